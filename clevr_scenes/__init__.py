"""CLEVR-style 3D scene pairs rendered with Blender (issue 3)."""
