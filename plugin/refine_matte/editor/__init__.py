"""Standalone mask editor (``diffmatte-editor``) built around the Refine Matte panel."""
