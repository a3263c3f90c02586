"""Local HTTP engine service (``diffmatte serve``).

Importing this package is cheap; the web stack and the engine load only when used:
``from diffmatte.service.app import create_app`` or ``diffmatte.service.server.serve``.
"""
