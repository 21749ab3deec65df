"""Real-photo sources: built-in photos, folders of good, odd and broken files, COCO masks, a Hub-layout dataset."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from realworld_support import (
    coco_document,
    encode_compressed_rle,
    photo,
    save,
    write_bad_files,
    write_json,
    write_truncated_jpeg,
    write_unusual_images,
)

from datagen.errors import ConfigError, InputError
from realworld_edit.annotations import decode_compressed_counts, decode_rle
from realworld_edit.builtin_photos import BUILTIN_PHOTOS
from realworld_edit.images import MIN_SIDE, ImageFile, decode_image, probe_image
from realworld_edit.sources import open_source


def skipped_reasons(source) -> dict[str, str]:
    return {Path(error.source).name: error.reason for error in source.skipped}


# --- built-in photos ---------------------------------------------------------------------------------


def test_builtin_photos_are_real_bundled_photographs_with_licences():
    source = open_source(None)
    assert source.image_ids == [f"builtin/{photo.name}" for photo in BUILTIN_PHOTOS]
    assert source.skipped == []
    for index in range(len(source)):
        image = source.load(index)
        assert image.pixels.dtype == np.uint8 and image.pixels.ndim == 3 and image.pixels.shape[2] == 3
        assert min(image.pixels.shape[:2]) >= MIN_SIDE
        assert image.licence and image.credit and "scikit-image" in image.credit
        # A photograph has thousands of distinct colours (hundreds of grays), unlike a drawing or a pattern.
        packed = image.pixels.astype(np.int32) @ np.array([1 << 16, 1 << 8, 1], np.int32)
        assert len(np.unique(packed)) > (100 if image.image_id in ("builtin/camera", "builtin/coins") else 5000)
    astronaut = source.load(0)
    assert astronaut.meta() == {
        "image_id": "builtin/astronaut",
        "origin": "scikit-image data/astronaut.png",
        "licence": astronaut.licence,
        "credit": astronaut.credit,
        "objects": 0,
    }


def test_loaded_images_are_read_only_and_decoded_identically_each_time():
    source = open_source(None)
    first = source.load(2)
    with pytest.raises(ValueError, match="read-only"):
        first.pixels[0, 0] = 0
    assert np.array_equal(source.load(2).pixels, first.pixels)


def test_max_side_shrinks_keeping_aspect():
    source = open_source(None, max_side=200)
    rocket = source.load(source.image_ids.index("builtin/rocket")).pixels
    assert rocket.shape == (133, 200, 3)  # 427x640 scaled by 200/640
    with pytest.raises(ConfigError, match="max_side"):
        open_source(None, max_side=10)


# --- folders: listing, determinism, digest -----------------------------------------------------------


def test_folder_lists_sorted_recursive_and_digest_follows_content(tmp_path):
    folder = tmp_path / "photos"
    for name in ("b/z.png", "a.jpg", "b/a.webp", "C.bmp", "notes.txt"):
        path = folder / name
        if name.endswith(".txt"):
            path.write_text("ignored: not an image suffix")
        else:
            save(path, photo(96, 80, seed=len(name)))
    first = open_source(str(folder))
    assert first.image_ids == ["C.bmp", "a.jpg", "b/a.webp", "b/z.png"]
    assert first.skipped == []
    again = open_source(str(folder))
    assert again.digest == first.digest
    moved = shutil.copytree(folder, tmp_path / "elsewhere" / "photos")
    assert open_source(str(moved)).digest == first.digest
    save(folder / "b/z.png", photo(96, 80, seed=99))
    assert open_source(str(folder)).digest != first.digest
    assert open_source(str(folder), max_images=2).image_ids == ["C.bmp", "a.jpg"]


def test_missing_folder_and_folder_without_images_fail_at_once(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        open_source(str(tmp_path / "nope"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no usable image.*no JPEG, PNG"):
        open_source(str(tmp_path / "empty"))


def test_folder_of_only_broken_files_fails_naming_each_reason(tmp_path):
    write_bad_files(tmp_path / "bad")
    with pytest.raises(ConfigError) as caught:
        open_source(str(tmp_path / "bad"))
    message = str(caught.value)
    assert "no usable image" in message
    for name in ("empty.jpg", "error_page.jpg", "tiny.png", "bomb.png"):
        assert name in message


# --- unusual but valid files -------------------------------------------------------------------------


def test_unusual_valid_images_are_converted_to_rgb(tmp_path):
    files = write_unusual_images(tmp_path / "photos")
    source = open_source(str(tmp_path / "photos"))
    assert source.skipped == []
    assert len(source) == len(files)
    loaded = {Path(source.entries[i].file.path).name: source.load(i).pixels for i in range(len(source))}
    reference = photo(160, 120, seed=1).astype(int)
    for name, pixels in loaded.items():
        assert pixels.dtype == np.uint8 and pixels.shape[2] == 3, name
    # Same picture through lossless formats; within JPEG/WebP error otherwise.
    for name in ("photo.bmp", "photo.tiff", "really_png.jpg", "rgb16.png"):
        assert np.array_equal(loaded[name], reference), name
    for name in ("photo.webp", "cmyk.jpg"):
        assert np.abs(loaded[name].astype(int) - reference).mean() < 6, name
    # 16-bit gray keeps its full tonal range (a naive conversion clips it to white).
    gray16 = loaded["gray16.png"]
    assert gray16[0, 0, 0] == 0 and gray16[-1, -1, 0] == 255 and 100 < gray16.mean() < 155
    assert np.array_equal(gray16[:, :, 0], gray16[:, :, 2])
    assert np.array_equal(loaded["gray.jpg"][:, :, 0], loaded["gray.jpg"][:, :, 1])
    # Transparency is composited onto white.
    assert (loaded["alpha.png"][:, :40] == 255).all()
    assert np.array_equal(loaded["alpha.png"][:, 40:], reference[:, 40:])
    assert (loaded["palette_transparent.png"] == 255).all(axis=2).any()
    assert np.abs(loaded["palette.png"].astype(int) - reference).mean() < 25


def test_exif_orientation_is_applied(tmp_path):
    files = write_unusual_images(tmp_path / "photos")
    probed = probe_image(files["exif_rotated_jpeg"])
    assert (probed.width, probed.height) == (120, 160)
    pixels = decode_image(probed)
    assert pixels.shape == (160, 120, 3)
    # Orientation 6 means "rotate 90 degrees clockwise to display".
    expected = np.rot90(photo(160, 120, seed=1), k=-1).astype(int)
    assert np.abs(pixels.astype(int) - expected).mean() < 6


def test_large_jpeg_is_decoded_reduced_then_fitted(tmp_path):
    path = save(tmp_path / "big.jpg", photo(2400, 1800, seed=3), quality=92)
    file = probe_image(path)
    reduced = decode_image(file, max_side=500)
    assert reduced.shape == (375, 500, 3)
    full = np.asarray(Image.open(path).convert("RGB").resize((500, 375), Image.Resampling.BOX)).astype(int)
    assert np.abs(reduced.astype(int) - full).mean() < 4


# --- broken files ------------------------------------------------------------------------------------


def test_broken_files_are_skipped_with_reasons_and_the_rest_is_used(tmp_path):
    folder = tmp_path / "photos"
    save(folder / "good.png", photo(100, 90))
    write_bad_files(folder)
    outside = save(tmp_path / "outside.png", photo(100, 90))
    (folder / "link_out.png").symlink_to(outside)
    (folder / "dangling.png").symlink_to(tmp_path / "gone.png")
    (folder / "linked_dir").symlink_to(tmp_path, target_is_directory=True)
    source = open_source(str(folder))
    assert source.image_ids == ["good.png"]
    reasons = skipped_reasons(source)
    assert reasons["empty.jpg"] == "empty file (0 bytes)"
    assert "text file" in reasons["error_page.jpg"] and "<!DOCTYPE html>" in reasons["error_page.jpg"]
    assert "text file" in reasons["notes.png"]
    assert reasons["tiny.png"] == f"image is 1x1 pixels; the shorter side must be at least {MIN_SIDE}"
    assert "refused before decoding as a possible decompression bomb" in reasons["bomb.png"]
    assert "900000000 pixels" in reasons["bomb.png"]
    assert reasons["large_header.png"].startswith("header claims 9000x9000 pixels (81 MP); refused before decoding")
    assert "not a JPEG, PNG, WebP, BMP or TIFF image" in reasons["garbage.webp"]
    assert "symlink points outside the source folder" in reasons["link_out.png"]
    assert "outside the source folder" in reasons["dangling.png"]
    assert "folder symlink points outside" in reasons["linked_dir"]
    assert all(isinstance(error, InputError) for error in source.skipped)


def test_symlink_inside_the_folder_is_used(tmp_path):
    folder = tmp_path / "photos"
    save(folder / "real.png", photo(100, 90))
    (folder / "alias.png").symlink_to(folder / "real.png")
    assert open_source(str(folder)).image_ids == ["alias.png", "real.png"]


def test_unreadable_file_is_skipped(tmp_path):
    folder = tmp_path / "photos"
    save(folder / "good.png", photo(100, 90))
    locked = save(folder / "locked.png", photo(100, 90))
    locked.chmod(0)
    try:
        try:
            locked.open("rb").close()
        except PermissionError:
            pass
        else:
            pytest.skip("file permissions do not block reads for this user (running as root)")
        source = open_source(str(folder))
        assert source.image_ids == ["good.png"]
        assert skipped_reasons(source)["locked.png"] == "cannot read file: Permission denied"
    finally:
        locked.chmod(0o644)


def test_truncated_jpeg_passes_the_header_check_and_fails_on_load(tmp_path):
    folder = tmp_path / "photos"
    save(folder / "good.png", photo(100, 90))
    write_truncated_jpeg(folder / "cut.jpg")
    source = open_source(str(folder))
    assert source.image_ids == ["cut.jpg", "good.png"]
    with pytest.raises(InputError, match="truncated or corrupt") as caught:
        source.load(0)
    # Named relative to the source folder: the reason reaches the published report.
    assert caught.value.source == "cut.jpg"
    assert source.load(1).pixels.shape == (90, 100, 3)


def test_file_removed_after_opening_fails_on_load_with_input_error(tmp_path):
    path = save(tmp_path / "gone.png", photo(100, 90))
    file = probe_image(path)
    path.unlink()
    with pytest.raises(InputError, match="truncated or corrupt|No such file"):
        decode_image(ImageFile(path=path, format=file.format, width=file.width, height=file.height))


# --- COCO annotations --------------------------------------------------------------------------------


def annotated_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    save(folder / "street/one.png", photo(200, 100, seed=1))
    save(folder / "two.png", photo(120, 120, seed=2))
    return folder


def test_coco_polygons_and_rle_become_masks_at_the_resized_size(tmp_path):
    folder = annotated_folder(tmp_path)
    disc = np.zeros((120, 120), bool)
    yy, xx = np.mgrid[0:120, 0:120]
    disc[(yy - 60) ** 2 + (xx - 60) ** 2 < 30**2] = True
    document = coco_document(
        images=[
            {"id": 1, "file_name": "street/one.png", "width": 200, "height": 100},
            {"id": 2, "file_name": "two.png", "width": 120, "height": 120},
            {"id": 3, "file_name": "not_in_folder.png", "width": 64, "height": 64},
        ],
        annotations=[
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [[20, 10, 120, 10, 120, 60, 20, 60]]},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": [[0, 0, 9, 0, 9, 9]]},
            {"id": 20, "image_id": 2, "category_id": 2, "segmentation": encode_compressed_rle(disc)},
            {"id": 21, "image_id": 2, "category_id": 1, "segmentation": {"size": [120, 120], "counts": [0, 14400]}},
            {"id": 30, "image_id": 3, "category_id": 1, "segmentation": [[0, 0, 9, 0, 9, 9]]},
        ],
    )
    source = open_source(str(folder), annotations=write_json(tmp_path / "instances.json", document), max_side=100)
    assert source.skipped == []
    one = source.load(source.image_ids.index("street/one.png"))
    assert one.pixels.shape == (50, 100, 3)
    assert [(obj.annotation_id, obj.category) for obj in one.objects] == [(10, "box")]
    ys, xs = np.nonzero(one.objects[0].mask)
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (10, 60, 5, 30)
    two = source.load(source.image_ids.index("two.png"))
    assert [(obj.annotation_id, obj.category) for obj in two.objects] == [(21, "box"), (20, "disc")]
    assert two.objects[0].mask.all()
    disc_small = two.objects[1].mask
    assert disc_small.shape == (100, 100)
    assert abs(int(disc_small.sum()) - int(disc.sum() * (100 / 120) ** 2)) < 60
    assert two.meta()["objects"] == 2


def test_compressed_rle_decodes_known_string():
    # A 3x3 mask with the centre column set, column-major: 3 background, 3 object, 3 background.
    assert decode_compressed_counts("333") == [3, 3, 3]
    assert decode_rle([3, 3, 3], (3, 3)).tolist() == [[False, True, False]] * 3
    mask = np.random.default_rng(0).random((37, 23)) > 0.6
    encoded = encode_compressed_rle(mask)
    assert np.array_equal(decode_rle(decode_compressed_counts(encoded["counts"]), (37, 23)), mask)


def test_bad_annotations_are_skipped_with_reasons(tmp_path):
    folder = annotated_folder(tmp_path)
    document = coco_document(
        images=[
            {"id": 1, "file_name": "one.png", "width": 200, "height": 100},
            {"id": 2, "file_name": "two.png", "width": 300, "height": 120},
        ],
        annotations=[
            {"id": 10, "image_id": 1, "category_id": 1, "segmentation": [[20, 10, 500, 10, 500, 60]]},
            {"id": 11, "image_id": 1, "category_id": 1, "segmentation": {"size": [50, 50], "counts": [0, 2500]}},
            {"id": 12, "image_id": 1, "category_id": 1, "segmentation": {"size": [100, 200], "counts": [5, 7]}},
            {"id": 13, "image_id": 1, "category_id": 9, "segmentation": [[0, 0, 9, 0, 9, 9]]},
            {"id": 14, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 9]]},
            {"id": 15, "image_id": 1, "category_id": 2, "segmentation": [[0, 0, 50, 0, 50, 50]]},
            {"id": 20, "image_id": 2, "category_id": 1, "segmentation": [[0, 0, 9, 0, 9, 9]]},
        ],
    )
    source = open_source(str(folder), annotations=write_json(tmp_path / "instances.json", document))
    reasons = {error.source.split(" annotation ")[-1].split(" image ")[-1]: error.reason for error in source.skipped}
    assert "outside the 200x100 image" in reasons["10 (street/one.png)"]
    assert "does not match the image's [100, 200]" in reasons["11 (street/one.png)"]
    assert "cover 12 pixels" in reasons["12 (street/one.png)"]
    assert "unknown category_id 9" in reasons["13 (street/one.png)"]
    assert "at least 3 x, y pairs" in reasons["14 (street/one.png)"]
    assert "says the image is 300x120 but the file is 120x120" in reasons["2 (two.png)"]
    one = source.load(source.image_ids.index("street/one.png"))
    assert [obj.annotation_id for obj in one.objects] == [15]
    assert source.load(source.image_ids.index("two.png")).objects == ()


def test_broken_annotation_json_is_reported_and_images_still_used(tmp_path):
    folder = annotated_folder(tmp_path)
    broken = tmp_path / "instances.json"
    broken.write_text('{"images": [{"id": 1,,}]')
    source = open_source(str(folder), annotations=broken)
    assert len(source) == 2 and source.annotations is None
    (error,) = source.skipped
    assert error.source == "instances.json" and "not valid JSON" in error.reason and "line 1" in error.reason
    with pytest.raises(ConfigError, match="annotation file"):
        open_source(str(folder), annotations=tmp_path / "missing.json")


# --- Hub datasets (a local folder in Hub layout, read through the same streaming code) ---------------


@pytest.fixture()
def hub_layout_dataset(tmp_path: Path) -> Path:
    """A dataset folder as `push_to_hub` lays it out: data/train-*.parquet with an Image column and a bad row."""
    import datasets

    images = [Image.fromarray(photo(96 + 8 * i, 80, seed=i)) for i in range(4)]
    table = datasets.Dataset.from_dict(
        {"image": [*images, None], "caption": [f"photo {i}" for i in range(5)]},
        features=datasets.Features({"image": datasets.Image(), "caption": datasets.Value("string")}),
    )
    folder = tmp_path / "hub_dataset"
    (folder / "data").mkdir(parents=True)
    table.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    return folder


def test_hub_source_streams_once_into_a_cache_then_reads_files(tmp_path, hub_layout_dataset, monkeypatch):
    cache = tmp_path / "cache"
    spec = f"hf:{hub_layout_dataset}"
    source = open_source(spec, cache_dir=cache, max_images=10)
    # A local folder's rows are named relative to it, never by its absolute path.
    assert source.image_ids == [f"train/{row:06d}" for row in range(4)]
    assert [(error.source, error.reason) for error in source.skipped] == [
        ("split=train row=4", "the image cell is empty")
    ]
    first = source.load(2)
    assert first.pixels.shape == (80, 112, 3)
    assert np.array_equal(first.pixels, photo(112, 80, seed=2))
    assert first.origin == "split=train row=2" and "not stated" in first.licence
    (folder,) = (cache / "sources").iterdir()
    assert (folder / "complete.json").is_file()
    # The cache alone now serves every process: the dataset is not streamed again.
    import datasets

    def no_stream(*args, **kwargs):
        raise AssertionError("the dataset was streamed again")

    monkeypatch.setattr(datasets, "load_dataset", no_stream)
    again = open_source(spec, cache_dir=cache, max_images=10)
    assert again.image_ids == source.image_ids and again.digest == source.digest
    assert np.array_equal(again.load(2).pixels, first.pixels)
    # A changed local folder is a new input: it is streamed afresh.
    monkeypatch.undo()
    shutil.rmtree(hub_layout_dataset / "data")
    with pytest.raises(ConfigError, match="cannot stream Hub dataset 'the local folder'"):
        open_source(spec, cache_dir=cache, max_images=10)


def test_hub_source_takes_the_first_rows_and_checks_column_and_split(tmp_path, hub_layout_dataset, monkeypatch):
    monkeypatch.setenv("VZERO_CACHE", str(tmp_path / "env_cache"))
    spec = f"hf:{hub_layout_dataset}"
    two = open_source(spec, max_images=2)
    assert len(two) == 2 and (tmp_path / "env_cache" / "sources").is_dir()
    assert two.digest != open_source(spec, max_images=3).digest
    with pytest.raises(ConfigError, match="no column 'picture'.*'image', 'caption'"):
        open_source(spec, image_column="picture")
    with pytest.raises(ConfigError, match="cannot stream Hub dataset.*split 'validation'"):
        open_source(spec, split="validation")
    assert not any(path.name.startswith(".") for path in (tmp_path / "env_cache" / "sources").iterdir())


def test_hub_source_reports_rows_that_are_not_images(tmp_path):
    import datasets

    buffer_path = save(tmp_path / "src.png", photo(100, 90))
    rows = {
        "image": [
            {"bytes": buffer_path.read_bytes(), "path": "cats/tabby.png"},
            {"bytes": b"<html>Not Found</html>", "path": "cats/missing.jpg"},
        ]
    }
    table = datasets.Dataset.from_dict(rows, features=datasets.Features({"image": datasets.Image()}))
    folder = tmp_path / "hub"
    (folder / "data").mkdir(parents=True)
    table.to_parquet(str(folder / "data" / "train-00000-of-00001.parquet"))
    source = open_source(f"hf:{folder}", cache_dir=tmp_path / "cache")
    assert len(source) == 1 and source.entries[0].match_names == ("cats/tabby.png", "tabby.png")
    (error,) = source.skipped
    assert error.source.endswith("row=1") and "text file" in error.reason


def test_hub_imagefolder_rows_point_to_files_that_are_read(tmp_path):
    folder = tmp_path / "imagefolder"
    save(folder / "train" / "b.png", photo(100, 90, seed=1))
    save(folder / "train" / "a.jpg", photo(120, 90, seed=2), quality=95)
    source = open_source(f"hf:{folder}", cache_dir=tmp_path / "cache")
    assert len(source) == 2 and source.skipped == []
    by_name = {entry.match_names[-1]: index for index, entry in enumerate(source.entries)}
    assert np.array_equal(source.load(by_name["b.png"]).pixels, photo(100, 90, seed=1))


def test_unreadable_hub_id_fails_at_once(tmp_path):
    with pytest.raises(ConfigError, match="Hub dataset id"):
        open_source("hf:", cache_dir=tmp_path)


def test_input_errors_carry_source_and_reason(tmp_path):
    bad = write_bad_files(tmp_path / "bad")
    with pytest.raises(InputError) as caught:
        probe_image(bad["zero_bytes"])
    assert caught.value.source == str(bad["zero_bytes"]) and caught.value.reason == "empty file (0 bytes)"


def test_hub_source_reads_a_pair_dataset_written_by_the_runner(tmp_path, chart_dataset):
    source = open_source(f"hf:{chart_dataset}", image_column="civilian", cache_dir=tmp_path / "cache", max_images=5)
    assert len(source) == 5 and source.skipped == []
    import datasets

    first_row = next(iter(datasets.load_dataset(str(chart_dataset), split="train", streaming=True)))
    image = source.load(0)
    assert np.array_equal(image.pixels, np.asarray(first_row["civilian"].convert("RGB")))
    assert image.image_id == "train/000000"
