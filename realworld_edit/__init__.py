"""Real-photo pairs: images from a folder, a Hub dataset or built-in photos, edited locally with OpenCV.

`sources.open_source` lists and checks the images (`images` decodes them safely, `annotations` adds COCO
object masks, `hub_source` caches a streamed Hub split, `builtin_photos` ships scikit-image's photographs);
the domain picks regions, applies the edits and checks that the change is visible.
"""
