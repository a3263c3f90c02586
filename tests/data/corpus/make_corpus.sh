#!/bin/sh
# Rewrites the corpus with the applications themselves (Debian 12 packages):
#   apt-get install -y --no-install-recommends gimp mypaint
# GIMP 2.10 (Script-Fu, make_gimp.scm) writes the PSD files; MyPaint 2.0.1's own document
# model (make_mypaint.py, run by the system python3 that Debian's mypaint uses) writes the
# ORA. Bytes differ from run to run (timestamps); the layer structure does not.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
gimp-console --version
gimp-console -i -d -f \
  -b "(begin (load \"$here/make_gimp.scm\") (corpus-gimp \"$here\"))" \
  -b '(gimp-quit 0)'
mypaint --version
rm -f "$here/mypaint_sketch.ora"
/usr/bin/python3 "$here/make_mypaint.py" "$here/mypaint_sketch.ora"
ls -l "$here"
