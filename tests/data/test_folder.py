"""Image-folder trees: class order, keys, colour modes, and refusal of bad or oversized images."""

from __future__ import annotations

import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from naviewer.data.base import DatasetWarning
from naviewer.data.folder import ImageFolderDataset
from naviewer.data.imageio import load_image, read_image_size
from naviewer.errors import NaviewerError

from .makers import write_png


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A tiny PNG whose header claims ``width`` x ``height`` (a decompression-bomb shape)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = zlib.compress(b"\x00" * 64)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", body) + chunk(b"IEND", b""))
    return path


def test_tree_classes_keys_labels_and_pixels(image_tree) -> None:
    root, pixels = image_tree
    data = ImageFolderDataset(root)
    assert data.class_names == ["ant", "bee", "cat"]
    keys = [data.source_key(i) for i in range(len(data))]
    assert keys == ["ant/x.png", "bee/a.png", "bee/sub/y.png", "cat/0.png", "cat/1.png"]
    np.testing.assert_array_equal(data.labels, [0, 1, 1, 2, 2])
    for i, key in enumerate(keys):
        np.testing.assert_array_equal(data.image(i), pixels[key])
        assert data.image_size(i) == pixels[key].shape[:2]
    assert data.describe() == {"kind": "image-folder", "root": str(root.resolve()), "size": 5}


def test_header_size_needs_no_decode(image_tree) -> None:
    root, pixels = image_tree
    data = ImageFolderDataset(root)
    assert data.image_size(0) == pixels["ant/x.png"].shape[:2]


def test_hidden_and_non_image_files_are_ignored(image_tree) -> None:
    root, _ = image_tree
    (root / "ant" / "notes.txt").write_text("not an image")
    write_png(root / "ant" / ".hidden.png", np.zeros((2, 2, 3), np.uint8))
    write_png(root / ".cache" / "z.png", np.zeros((2, 2, 3), np.uint8))
    write_png(root / "loose.png", np.zeros((2, 2, 3), np.uint8))
    (root / "bee" / ".DS_Store").write_bytes(b"\0")  # a system's own metadata
    (root / "bee" / "._x.png").write_bytes(b"\0")
    (root / "bee" / ".gitkeep").write_bytes(b"")  # no image: nothing to say (a review, session 27)
    (root / ".git" / "objects").mkdir(parents=True)
    (root / ".git" / "objects" / "ab").write_bytes(b"x")
    with pytest.warns(DatasetWarning) as caught:
        data = ImageFolderDataset(root)
    assert len(data) == 5 and data.class_names == ["ant", "bee", "cat"]
    # the non-image in a class folder is counted and named (it was skipped without a word)
    said = [str(w.message) for w in caught]
    assert any("1 file(s) in the class folders are not images" in m and "ant/notes.txt" in m for m in said)
    # hidden images and folders are skipped and said once (a real image named .x.png went in silence; a bad-input
    # probe, session 27); macOS's .DS_Store and ._ companions stay unsaid
    hidden = [m for m in said if "hidden image file(s)" in m]
    assert len(hidden) == 1 and "2 hidden" in hidden[0] and "ant/.hidden.png" in hidden[0] and ".cache/" in hidden[0]
    assert not any("DS_Store" in m or "._x.png" in m or ".git" in m for m in said)


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "LA", "I;16", "1", "CMYK"])
def test_every_mode_becomes_rgb_uint8(tmp_path: Path, mode: str) -> None:
    rgb = np.random.default_rng(0).integers(0, 256, size=(6, 7, 3), dtype=np.uint8)
    img = Image.fromarray(rgb)
    if mode == "I;16":
        img = Image.fromarray((rgb[:, :, 0].astype(np.uint16) * 257))
    elif mode == "P":
        img = img.convert("P")
        img.info["transparency"] = 0
    else:
        img = img.convert(mode)
    ext = ".jpg" if mode == "CMYK" else ".png"
    path = tmp_path / "c" / f"im{ext}"
    path.parent.mkdir()
    img.save(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = load_image(path)
    assert out.shape == (6, 7, 3) and out.dtype == np.uint8
    if mode == "I;16":
        np.testing.assert_array_equal(out[:, :, 0], rgb[:, :, 0])
    if mode == "RGBA":
        np.testing.assert_array_equal(out, rgb)  # alpha dropped, as torchvision's loader does


def test_corrupt_image_names_the_file_lazily_and_in_verify(image_tree) -> None:
    root, _ = image_tree
    bad = root / "bee" / "a.png"
    bad.write_bytes(bad.read_bytes()[:40])  # truncated PNG
    junk = root / "cat" / "0.png"
    junk.write_bytes(b"this is not a png at all")
    data = ImageFolderDataset(root)  # opening reads no pixels
    assert len(data) == 5
    np.testing.assert_array_equal(data.image(0).shape[2], 3)
    with pytest.raises(NaviewerError) as info:
        data.image(1)
    assert info.value.path == str(bad.resolve())
    with pytest.raises(NaviewerError, match="not a readable image") as info:
        data.image(3)
    assert info.value.path == str(junk.resolve())
    with pytest.raises(NaviewerError):
        data.verify()
    problems = data.verify(raise_first=False)
    assert sorted(p.path for p in problems) == sorted([str(bad.resolve()), str(junk.resolve())])


@pytest.mark.parametrize("side", [9_000, 10_000, 100_000])
def test_oversized_header_is_refused_before_decoding(tmp_path: Path, side: int) -> None:
    """Over naviewer's 64 MP limit, over Pillow's warning limit, and over its error limit."""
    path = png_header_only(tmp_path / "tree" / "a" / "bomb.png", side, side)
    data = ImageFolderDataset(tmp_path / "tree")
    with pytest.raises(NaviewerError, match=f"claims (({side}x{side} = )?){side * side:,} pixels, over the limit of "
                       "64,000,000") as info:  # naviewer's limit, not Pillow's (it quoted 178,956,970)
        data.image(0)
    assert info.value.path == str(path.resolve()) and "decompression bomb DOS" not in str(info.value)
    with pytest.raises(NaviewerError):
        data.image_size(0)


def test_a_limit_raised_past_pillows_guard_says_pillow_refuses(tmp_path: Path) -> None:
    path = png_header_only(tmp_path / "tree" / "a" / "big.png", 10_000, 10_000)  # 100 MP: over Pillow's 89 MP warning
    data = ImageFolderDataset(tmp_path / "tree", max_pixels=200_000_000)
    with pytest.raises(NaviewerError, match="more than Pillow decodes"):
        data.image(0)


def test_configurable_pixel_limit(image_tree) -> None:
    root, _ = image_tree
    data = ImageFolderDataset(root, max_pixels=24)
    with pytest.raises(NaviewerError, match="over the limit of 24"):
        data.image(0)
    assert data.describe()["max_pixels"] == 24
    height, width = read_image_size(data.path(0), max_pixels=10_000)
    assert ImageFolderDataset(root).image(0).shape[:2] == (height, width)


def test_eps_is_never_opened(tmp_path: Path) -> None:
    """EPS goes through Ghostscript; a PostScript file renamed .png must still be refused."""
    path = tmp_path / "trick.png"
    path.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    with pytest.raises(NaviewerError, match="not a readable image"):
        load_image(path)


def test_empty_class_folder_warns_and_keeps_the_class(image_tree) -> None:
    root, _ = image_tree
    (root / "zebra").mkdir()
    with pytest.warns(DatasetWarning, match="zebra"):
        data = ImageFolderDataset(root)
    assert data.class_names[-1] == "zebra" and data.empty_classes == ["zebra"]
    assert (data.labels < 3).all()


@pytest.mark.skipif(not hasattr(__import__("os"), "mkfifo"), reason="named pipes are POSIX")
def test_a_pipe_or_broken_link_named_like_an_image_is_skipped_with_a_warning(image_tree) -> None:
    """A FIFO called pipe.png blocked the first read for ever (`naviewer new` hung with no word)."""
    import os

    root, _ = image_tree
    first = sorted(p.name for p in root.iterdir() if p.is_dir())[0]
    before = len(ImageFolderDataset(root))
    os.mkfifo(root / first / "pipe.png")
    (root / first / "gone.png").symlink_to(root / "nowhere.png")
    (root / first / "loop.png").symlink_to(root / first / "loop.png")  # skipped unsaid before
    with pytest.warns(DatasetWarning) as caught:
        data = ImageFolderDataset(root)
    said = " ".join(str(w.message) for w in caught)
    assert "pipe.png': not a regular file" in said and "gone.png': not a regular file" in said
    assert "loop.png': " in said
    assert len(data) == before


def test_empty_tree_and_missing_root(tmp_path: Path) -> None:
    (tmp_path / "tree" / "a").mkdir(parents=True)
    (tmp_path / "tree" / "a" / "readme.txt").write_text("x")
    with pytest.raises(NaviewerError, match="no images") as info:
        ImageFolderDataset(tmp_path / "tree")
    assert info.value.path == str((tmp_path / "tree").resolve())
    with pytest.raises(NaviewerError, match="no class folders"):
        ImageFolderDataset(tmp_path / "tree" / "a")
    with pytest.raises(NaviewerError, match="not found"):
        ImageFolderDataset(tmp_path / "nope")


def test_symlink_loop_in_a_tree_terminates(image_tree) -> None:
    root, _ = image_tree
    (root / "bee" / "sub" / "loop").symlink_to(root / "bee", target_is_directory=True)
    data = ImageFolderDataset(root)
    assert len(data) == 5


def test_float_and_wide_integer_images_are_scaled_not_clipped(tmp_path: Path) -> None:
    """A float32 TIFF with values in [0, 1] decoded all black; 16-bit values in a 32-bit mode all white."""
    ramp = np.linspace(0.0, 1.0, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(ramp, mode="F").save(tmp_path / "f.tif")
    got = load_image(tmp_path / "f.tif")
    assert got[..., 0].min() == 0 and got[..., 0].max() == 255 and len(np.unique(got)) > 32
    wide = (np.arange(64, dtype=np.int32).reshape(8, 8) * 1000)
    Image.fromarray(wide, mode="I").save(tmp_path / "i.tif")
    got = load_image(tmp_path / "i.tif")
    assert got[0, 0, 0] == 0 and got[-1, -1, 0] == round(63000 / 257)


def test_images_directly_in_the_root_are_counted_in_a_warning(tmp_path) -> None:
    """They are not read (root/<class>/<image>); a newcomer's count came out short with no word why."""
    image = np.zeros((4, 4, 3), np.uint8)
    for name in ("cat/a.png", "dog/b.png", "loose1.png", "loose2.jpg", ".hidden.png"):
        write_png(tmp_path / name, image)
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.warns(DatasetWarning, match=r"2 image\(s\) directly in the folder are not read \(loose1.png, loose2.jpg\)"):
        data = ImageFolderDataset(tmp_path)
    assert len(data) == 2


def test_one_image_under_two_labels_is_registered_with_a_warning(tmp_path) -> None:
    """A file hard-linked into two class folders was registered twice, silently, with two labels."""
    import os

    from naviewer.workspace import Workspace

    image = np.arange(48, dtype=np.uint8).reshape(4, 4, 3)
    write_png(tmp_path / "data" / "cat" / "a.png", image)
    write_png(tmp_path / "data" / "cat" / "b.png", image[::-1].copy())
    (tmp_path / "data" / "dog").mkdir()
    os.link(tmp_path / "data" / "cat" / "a.png", tmp_path / "data" / "dog" / "a-link.png")
    with pytest.warns(DatasetWarning, match=r"1 image\(s\) appear with identical pixels under two or more labels "
                                            r"\(e.g. cat/a.png \(cat\) = dog/a-link.png \(dog\)\)"):
        with Workspace.create(tmp_path / "ws", ImageFolderDataset(tmp_path / "data")) as ws:
            assert ws.store.sample_count() == 3
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetWarning)  # distinct images under two labels say nothing
        os.unlink(tmp_path / "data" / "dog" / "a-link.png")
        write_png(tmp_path / "data" / "dog" / "c.png", np.ones((4, 4, 3), np.uint8))
        with Workspace.create(tmp_path / "ws2", ImageFolderDataset(tmp_path / "data")) as ws:
            assert ws.store.sample_count() == 3


def test_a_png_cut_short_in_its_header_is_said_as_damaged(tmp_path):
    """"cannot read image header: OSError: Truncated File Read" named a Python class (a bad-input corpus, session 23)."""
    import io

    import numpy as np
    import pytest
    from PIL import Image

    from naviewer.data.imageio import _open_checked
    from naviewer.errors import NaviewerError

    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(buf, format="PNG")
    cut = tmp_path / "cut.png"
    cut.write_bytes(buf.getvalue()[:20])  # the signature and part of IHDR
    with pytest.raises(NaviewerError) as caught:
        _open_checked(cut, 10**8)
    assert "damaged or cut short" in caught.value.message and "OSError" not in caught.value.message


def test_corrupt_exif_is_one_warning_naming_the_image(tmp_path: Path) -> None:
    """A JPEG with corrupt EXIF printed Pillow's own warnings, naming Pillow's source file and line (read like a
    crash) and not the image (a bad-input probe, session 28): one naviewer warning names the file; the pixels read."""
    exif = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08\x00\x05\x01\x12\x00\x03\xff\xff\xff\xff" + b"\xff" * 40
    path = tmp_path / "bad_exif.jpg"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(path, exif=exif)
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        pixels = load_image(path)
        read_image_size(path)
    assert pixels.shape == (16, 16, 3)
    assert said and all(issubclass(w.category, DatasetWarning) for w in said), [str(w.message) for w in said]
    assert f"{path}: damaged metadata ignored (" in str(said[0].message)


def test_class_folders_that_print_alike_are_warned_about(tmp_path: Path) -> None:
    """'café' composed and decomposed were two classes that every message printed the same way (a bad-input probe,
    session 28): a warning names both spellings' code points."""
    for name in ("caf\u00e9", "cafe\u0301", "dog"):
        for i in range(2):
            write_png(tmp_path / "imgs" / name / f"{i}.png", np.full((8, 8, 3), 40 * i + len(name), np.uint8))
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        dataset = ImageFolderDataset(tmp_path / "imgs")
    assert len(dataset.class_names) == 3
    texts = [str(w.message) for w in said if issubclass(w.category, DatasetWarning)]
    assert any("print alike" in t and "U+00E9" in t and "U+0301" in t for t in texts), texts
