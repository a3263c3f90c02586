"""``python -m refine_matte.editor`` runs the standalone editor."""
import sys

from .app import main

sys.exit(main())
