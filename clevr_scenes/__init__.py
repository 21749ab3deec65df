"""CLEVR-style 3D scene pairs.

Pure Python (no `bpy`): `vocabulary` (shapes, sizes, materials, colours), `camera` (pose, projection, ground
directions), `scene` (objects, lights, the scene graph JSON), `placement` (CLEVR's sampling rules and their
check), `relations` (left/right/front/behind) and `edits` (scene-graph edits with a change log and an English
description). The renderer and the domain that turn a scene pair into images live in their own modules and are
the only ones that import `bpy`.
"""
