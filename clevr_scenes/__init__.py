"""CLEVR-style 3D scene pairs rendered with Blender's `bpy`: not built yet (the README lists what exists)."""
