"""CIFAR-10/100 pickles: the real subset, generated batches, and every kind of broken input."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from naviewer.data.cifar import CifarDataset
from naviewer.data.folder import ImageFolderDataset
from naviewer.data.store import ImageStore
from naviewer.errors import NaviewerError

from .makers import cifar_rows, make_cifar10, make_cifar100, write_pickle, write_png

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


# -- the real CIFAR-10 subset ------------------------------------------------------------------
def _trusted_labels(folder: Path, names: list[str]) -> np.ndarray:
    """Labels read with the plain unpickler: fine for the trusted test data, as a reference."""
    labels = []
    for name in names:
        with open(folder / name, "rb") as handle:
            labels.extend(pickle.load(handle, encoding="bytes")[b"labels"])
    return np.asarray(labels)


def test_real_subset_loads_train_and_test(cifar10_root: Path) -> None:
    train = CifarDataset(cifar10_root, "train")
    test = CifarDataset(cifar10_root / "cifar-10-batches-py", "test")
    assert (len(train), len(test)) == (4068, 1017)
    assert train.class_names == CIFAR10_NAMES == test.class_names
    assert train.images.shape == (4068, 32, 32, 3) and train.images.dtype == np.uint8
    folder = cifar10_root / "cifar-10-batches-py"
    expected = _trusted_labels(folder, [f"data_batch_{i}" for i in range(1, 5)])
    np.testing.assert_array_equal(train.labels, expected)
    np.testing.assert_array_equal(np.bincount(train.labels, minlength=10), np.bincount(expected, minlength=10))
    np.testing.assert_array_equal(test.labels, _trusted_labels(folder, ["test_batch"]))
    assert train.labels.dtype == np.int64
    assert train.source_key(0) == "data_batch_1/0"
    assert train.source_key(1017 + 17) == "data_batch_2/17"
    assert train.source_key(4067) == "data_batch_4/1016"
    assert test.source_key(5) == "test_batch/5"
    assert train.image_size(3) == (32, 32)


def test_real_subset_hash_is_stable_across_loads_and_processes(cifar10_root: Path) -> None:
    first = CifarDataset(cifar10_root).content_hash(123)
    second = CifarDataset(cifar10_root).content_hash(123)
    code = (
        "import sys; from naviewer.data.cifar import CifarDataset; "
        "print(CifarDataset(sys.argv[1]).content_hash(123))"
    )
    other = subprocess.run(
        [sys.executable, "-c", code, str(cifar10_root)], capture_output=True, text=True, check=True, timeout=120
    ).stdout.strip()
    assert first == second == other
    assert len(first) == 32


def test_png_of_a_cifar_image_has_the_same_hash(cifar10_root: Path, tmp_path: Path) -> None:
    cifar = CifarDataset(cifar10_root, "test")
    for index in (0, 7):
        write_png(tmp_path / "tree" / cifar.class_names[cifar.labels[index]] / f"{index}.png", cifar.image(index))
    tree = ImageFolderDataset(tmp_path / "tree")
    hashes = {tree.content_hash(i) for i in range(len(tree))}
    assert hashes == {cifar.content_hash(0), cifar.content_hash(7)}


def test_real_subset_becomes_a_store_without_copying(cifar10_root: Path) -> None:
    cifar = CifarDataset(cifar10_root)
    store = ImageStore.from_dataset(cifar)
    assert store.fixed_size == (32, 32) and len(store) == 4068
    assert np.shares_memory(store.buckets[0].images, cifar.images)
    np.testing.assert_array_equal(store.labels, cifar.labels)
    np.testing.assert_array_equal(store.image(100), cifar.image(100))


# -- generated batches ---------------------------------------------------------------------------
def test_generated_cifar10_decodes_channel_major_rows(tmp_path: Path) -> None:
    folder, content = make_cifar10(tmp_path, per_batch=5, batches=(1, 2, 3))
    train = CifarDataset(folder)
    assert len(train) == 15
    expected = np.concatenate([content[f"data_batch_{b}"][0] for b in (1, 2, 3)])
    np.testing.assert_array_equal(train.images, expected)
    np.testing.assert_array_equal(train.labels, np.concatenate([content[f"data_batch_{b}"][1] for b in (1, 2, 3)]))
    assert train.source_key(11) == "data_batch_3/1"
    test = CifarDataset(folder, "test")
    np.testing.assert_array_equal(test.images, content["test_batch"][0])
    assert test.describe() == {"kind": "cifar10", "root": str(folder.resolve()), "split": "test", "size": 5}


def test_generated_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    folder, content = make_cifar100(tmp_path, n=6)
    fine = CifarDataset(tmp_path, "train")
    assert fine.kind == "cifar100" and len(fine.class_names) == 100 and fine.class_names[3] == "fine3"
    np.testing.assert_array_equal(fine.labels, content["train"][1])
    np.testing.assert_array_equal(fine.images, content["train"][0])
    coarse = CifarDataset(folder, "test", coarse=True)
    assert len(coarse.class_names) == 20
    np.testing.assert_array_equal(coarse.labels, content["test"][2])
    assert coarse.source_key(2) == "test/2"
    assert coarse.describe()["coarse"] is True


# -- broken input ----------------------------------------------------------------------------------
def test_truncated_batch_names_the_file(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=4, batches=(1, 2))
    raw = (folder / "data_batch_2").read_bytes()
    (folder / "data_batch_2").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(NaviewerError, match="truncated") as info:
        CifarDataset(folder)
    assert info.value.path == str(folder.resolve() / "data_batch_2")


@pytest.mark.parametrize("missing", ["batches.meta", "data_batch_1", "test_batch"])
def test_missing_file_names_it(tmp_path: Path, missing: str) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    (folder / missing).unlink()
    split = "test" if missing == "test_batch" else "train"
    with pytest.raises(NaviewerError) as info:
        CifarDataset(folder, split)
    assert info.value.path.endswith(missing)


def test_gap_in_training_batches_is_an_error(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1, 3))
    with pytest.raises(NaviewerError, match="data_batch_3 exist") as info:
        CifarDataset(folder)
    assert info.value.path.endswith("data_batch_2")


def test_wrong_shape_names_the_file(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(NaviewerError, match="expected uint8") as info:
        CifarDataset(folder)
    assert info.value.path.endswith("data_batch_1")


def test_label_out_of_range_names_the_file(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    images = np.zeros((2, 32, 32, 3), np.uint8)
    write_pickle(folder / "data_batch_1", {b"data": cifar_rows(images), b"labels": [0, 10]})
    with pytest.raises(NaviewerError, match="out of range") as info:
        CifarDataset(folder)
    assert info.value.path.endswith("data_batch_1")


def test_label_count_mismatch_and_bad_split(tmp_path: Path) -> None:
    folder, _ = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    write_pickle(folder / "data_batch_1", {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(NaviewerError, match="2 images but 1 labels"):
        CifarDataset(folder)
    with pytest.raises(NaviewerError, match="split"):
        CifarDataset(folder, "validation")


def test_not_a_cifar_folder(tmp_path: Path) -> None:
    with pytest.raises(NaviewerError, match="cifar-10-batches-py"):
        CifarDataset(tmp_path)


def test_image_is_a_copy_the_caller_may_edit(tmp_path: Path) -> None:
    folder, content = make_cifar10(tmp_path, per_batch=2, batches=(1,))
    data = CifarDataset(folder)
    image = data.image(0)
    image[:] = 0
    np.testing.assert_array_equal(data.image(0), content["data_batch_1"][0][0])


def test_a_folder_with_both_cifar_sets_or_a_file_in_their_place_is_said(tmp_path):
    """Both cifar-10-batches-py/ and cifar-100-python/ opened CIFAR-10 silently; a file named cifar-10-batches-py
    read as "no class folders here"."""
    import pytest

    from naviewer.data.cifar import CIFAR10_DIR, CIFAR100_DIR, find_cifar_dir
    from naviewer.errors import NaviewerError

    (tmp_path / "both" / CIFAR10_DIR).mkdir(parents=True)
    (tmp_path / "both" / CIFAR100_DIR).mkdir()
    with pytest.raises(NaviewerError, match="holds both"):
        find_cifar_dir(tmp_path / "both")
    assert find_cifar_dir(tmp_path / "both" / CIFAR100_DIR)[0] == "cifar100"
    (tmp_path / "file").mkdir()
    (tmp_path / "file" / CIFAR10_DIR).write_text("not a folder")
    with pytest.raises(NaviewerError, match="is a file, not the folder"):
        find_cifar_dir(tmp_path / "file")


def test_too_few_class_names_are_named_beside_the_batch(tmp_path: Path) -> None:
    """A batches.meta with too few names blamed data_batch_1 alone (a sweep, session 19)."""
    folder, _ = make_cifar10(tmp_path, per_batch=20, batches=(1,))
    write_pickle(folder / "batches.meta", {b"label_names": [b"airplane", b"automobile"], b"num_cases_per_batch": 20})
    with pytest.raises(NaviewerError, match="batches.meta names too few classes"):
        CifarDataset(tmp_path, "train")
