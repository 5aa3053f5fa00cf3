"""Data sources: the embedded digits, CSV and NPZ files, normalization, and predict inputs.

Every file is written to tmp_path by the test that reads it, so each case states its data.
"""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
from PIL import Image

from netsharp.data import Normalizer, datasets, fit_normalizer, load_source, read_inputs
from netsharp.data.sources import split_rows
from netsharp.errors import DataError


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def error_text(call, *args, **kwargs) -> str:
    with pytest.raises(DataError) as error:
        call(*args, **kwargs)
    return str(error.value)


# ---- the embedded digits ---------------------------------------------------------------------

def test_digits_are_the_uci_set_with_a_fixed_split():
    data = datasets.digits(raw=True)
    assert (data.name, data.features, data.classes, data.sample_shape) == ("digits", 64, 10, (8, 8))
    assert data.x_train.shape == (1437, 64) and data.x_test.shape == (360, 64)
    assert data.x_train.dtype == np.uint8 and data.pixel_max == 16
    assert data.x_train.max() == 16 and data.x_train.min() == 0
    counts = np.bincount(np.concatenate([data.y_train, data.y_test]))
    assert counts.sum() == 1797 and all(170 <= c <= 190 for c in counts)
    assert data.class_names == tuple("0123456789")
    # the file's first row is a 0 and the rows cycle through the digits
    assert data.y_train[:10].tolist() == list(range(10))
    again = datasets.digits(raw=True)
    np.testing.assert_array_equal(again.y_test, data.y_test)


def test_digits_scaled_by_default_and_raw_through_load_source():
    scaled, raw = datasets.digits(), load_source("digits")
    assert scaled.x_train.dtype == np.float32 and scaled.pixel_max == 1.0
    np.testing.assert_allclose(scaled.x_test, raw.x_test / 16.0)
    assert raw.compile_options() == {"features": 64, "classes": 10}


# ---- CSV -------------------------------------------------------------------------------------

def test_csv_with_header_and_label_column_found_by_name(tmp_path):
    path = write(tmp_path / "data.csv",
                 "a,b,Label\n" + "".join(f"{i},{i * 0.5},{i % 3}\n" for i in range(10)))
    data = load_source(str(path), test_fraction=0.3, seed=1)
    assert (data.name, data.features, data.classes, data.task) == ("data", 2, 3, "multiclass")
    assert len(data.x_train) == 7 and len(data.x_test) == 3
    assert data.x_train.dtype == np.float32 and data.pixel_max is None
    rows = np.concatenate([data.x_train, data.x_test])
    labels = np.concatenate([data.y_train, data.y_test])
    assert sorted(rows[:, 0].tolist()) == list(range(10))
    assert all(labels[i] == int(rows[i, 0]) % 3 for i in range(10))


def test_csv_without_header_takes_the_first_column_as_label(tmp_path):
    path = write(tmp_path / "plain.csv", "".join(f"{i % 2},{i},{2 * i}\n" for i in range(10)))
    data = load_source(str(path))
    assert data.features == 2 and data.classes == 2
    for x, y in zip(data.x_train, data.y_train):
        assert y == x[0] % 2 and x[1] == 2 * x[0]
    assert data.x_train.dtype == np.uint8            # whole numbers 0..255 kept compact


def test_csv_label_by_index_and_by_name(tmp_path):
    text = "f1,f2,kind\n" + "".join(f"{i},{i + 1},{'cat' if i % 2 else 'dog'}\n"
                                    for i in range(10))
    path = write(tmp_path / "pets.csv", text)
    for label in ("kind", 2, -1, "2"):
        data = load_source(str(path), label=label)
        assert data.class_names == ("cat", "dog") and data.features == 2
        for x, y in zip(data.x_train, data.y_train):
            assert data.class_names[y] == ("cat" if x[0] % 2 else "dog")


def test_csv_string_labels_number_the_classes_in_sorted_order(tmp_path):
    names = ["virginica", "setosa", "versicolor"]
    path = write(tmp_path / "iris.csv.gz", "")
    path.write_bytes(gzip.compress("".join(f"{names[i % 3]},{i},{i}\n"
                                           for i in range(12)).encode()))
    data = load_source(str(path), test_fraction=0.25)
    assert data.class_names == ("setosa", "versicolor", "virginica")
    assert data.name == "iris"
    for x, y in zip(data.x_test, data.y_test):
        assert data.class_names[y] == names[int(x[0]) % 3]


def test_csv_integer_labels_not_starting_at_zero_keep_their_names(tmp_path):
    path = write(tmp_path / "wine.csv", "".join(f"{1 + i % 3},{i}\n" for i in range(9)))
    data = load_source(str(path), test_fraction=0.34)
    assert data.class_names == ("1", "2", "3") and data.classes == 3
    for x, y in zip(data.x_train, data.y_train):
        assert data.class_names[y] == str(1 + int(x[0]) % 3)


def test_csv_fractional_labels_are_regression(tmp_path):
    path = write(tmp_path / "r.csv", "y,x\n" + "".join(f"{i / 4},{i}\n" for i in range(8)))
    data = load_source(str(path), label="y", test_fraction=0.25)
    assert data.task == "regression" and data.classes == 0 and data.y_train.dtype == np.float32
    np.testing.assert_allclose(data.y_train, data.x_train[:, 0] / 4)
    assert data.compile_options() == {"features": 1, "task": "regression"}


def test_csv_an_id_column_is_not_taken_for_labels(tmp_path):
    path = write(tmp_path / "ids.csv", "".join(f"{1000 + i},{i},{i % 2}\n" for i in range(40)))
    message = error_text(load_source, str(path))
    assert "40 different labels in 40 rows" in message and "--label" in message


@pytest.mark.parametrize("text, where, problem", [
    ("a,b,label\n1,2,0\n\n3,4\n", ":4:", "2 fields, but line 1 has 3"),
    ("a,b,label\n1,2,0\n3,nan,1\n", ":3:2:", "nan is not a finite number (column 'b')"),
    ("a,b,label\n1,2,0\n3,inf,1\n", ":3:2:", "inf is not a finite number"),
    ("a,b,label\n1,2,0\n3,,1\n", ":3:2:", "the cell is empty (column 'b')"),
    ("a,b,label\n1,2,0\n3,x,1\n", ":3:2:", "'x' is not a number (column 'b')"),
    ("a,b,label\n1,2,0\n3,4,\n", ":3:", "the label is empty"),
])
def test_csv_errors_name_file_line_and_column(tmp_path, text, where, problem):
    path = write(tmp_path / "bad.csv", text)
    message = error_text(load_source, str(path))
    assert f"{path}{where}" in message and problem in message


def test_csv_text_in_a_feature_column_suggests_choosing_the_label(tmp_path):
    path = write(tmp_path / "iris.csv", "sl,sw,species\n1,2,setosa\n3,4,virginica\n")
    message = error_text(load_source, str(path))
    assert f"{path}:2:3: 'setosa' is not a number" in message
    assert "labels are taken from the first column (column 'sl') by default" in message


@pytest.mark.parametrize("text, problem", [
    ("", "the file is empty"),
    ("\n  \n", "the file is empty"),
    ("a,b,label\n", "a header row but no data"),
])
def test_csv_without_data(tmp_path, text, problem):
    path = write(tmp_path / "empty.csv", text)
    assert problem in error_text(load_source, str(path))


def test_csv_label_column_not_found_lists_the_columns(tmp_path):
    path = write(tmp_path / "data.csv", "alpha,beta,gamma\n1,2,0\n3,4,1\n")
    message = error_text(load_source, str(path), label="gama")
    assert "no column 'gama'" in message and "did you mean 'gamma'" in message
    assert "the columns are: alpha, beta, gamma" in message
    plain = write(tmp_path / "plain.csv", "1,2,0\n3,4,1\n")
    assert "no header row" in error_text(load_source, str(plain), label="gamma")
    assert "no column 3" in error_text(load_source, str(plain), label=3)


def test_split_is_seeded_and_disjoint():
    train, test = split_rows(100, 0.2, seed=7)
    again = split_rows(100, 0.2, seed=7)
    assert len(test) == 20 and sorted(np.concatenate([train, test]).tolist()) == list(range(100))
    np.testing.assert_array_equal(test, again[1])
    assert not np.array_equal(test, split_rows(100, 0.2, seed=8)[1])
    assert "between 0 and 1" in error_text(split_rows, 100, 1.0, 0)
    assert "too few" in error_text(split_rows, 1, 0.2, 0)


# ---- NPZ -------------------------------------------------------------------------------------

def test_npz_x_y_images_are_flattened_and_split(tmp_path):
    x = np.arange(10 * 4 * 3, dtype=np.uint8).reshape(10, 4, 3)
    np.savez(tmp_path / "imgs.npz", x=x, y=np.arange(10) % 2)
    data = load_source(str(tmp_path / "imgs.npz"))
    assert data.x_train.shape == (8, 12) and data.x_test.shape == (2, 12)
    assert data.x_train.dtype == np.uint8 and data.pixel_max is None   # 0..16 would fit too
    assert data.sample_shape == (4, 3) and data.classes == 2
    for row, y in zip(data.x_test, data.y_test):
        assert y == (row[0] // 12) % 2


def test_npz_keras_style_is_used_as_given(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((6, 5)), "y_train": np.array([0, 1, 2, 0, 1, 2]),
              "x_test": rng.random((3, 5)), "y_test": np.array([[0], [0], [1]])}
    np.savez(tmp_path / "keras.npz", **arrays)
    data = load_source(str(tmp_path / "keras.npz"))
    np.testing.assert_allclose(data.x_train, arrays["x_train"].astype(np.float32))
    assert data.x_test.dtype == np.float32 and data.pixel_max is None
    assert data.y_train.tolist() == [0, 1, 2, 0, 1, 2] and data.y_test.tolist() == [0, 0, 1]
    assert data.classes == 3 and data.sample_shape is None


def test_npz_one_hot_labels(tmp_path):
    y = np.eye(4)[[3, 1, 0, 2, 1, 3, 0, 2, 1, 3]]
    np.savez(tmp_path / "onehot.npz", x=np.arange(10.0)[:, None], y=y)
    data = load_source(str(tmp_path / "onehot.npz"))
    for x, label in zip(data.x_train[:, 0], data.y_train):
        assert label == [3, 1, 0, 2, 1, 3, 0, 2, 1, 3][int(x)]


@pytest.mark.parametrize("arrays, problem", [
    ({"features": np.zeros((2, 2)), "labels": np.zeros(2)},
     "no arrays named x and y, nor x_train, y_train, x_test, y_test"),
    ({"x": np.array([{"a": 1}, None], dtype=object), "y": np.zeros(2)},
     "array 'x' holds Python objects"),
    ({"x": np.array([[1.0, np.nan], [2.0, 3.0]]), "y": np.zeros(2)}, "sample 0, feature 1 is nan"),
    ({"x": np.zeros((3, 2)), "y": np.zeros(2)}, "'x' has 3 samples but 'y' has 2 labels"),
    ({"x": np.zeros(3), "y": np.zeros(3)}, "has shape (3,); expected (samples, features)"),
    ({"x": np.array([["a"], ["b"]]), "y": np.zeros(2)}, "features must be numbers"),
])
def test_npz_errors(tmp_path, arrays, problem):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    message = error_text(load_source, str(path))
    assert str(path) in message and problem in message


def test_npz_lists_the_arrays_it_holds(tmp_path):
    np.savez(tmp_path / "bad.npz", features=np.zeros((2, 2)), labels=np.zeros(2))
    assert "the archive holds: features, labels" in error_text(load_source,
                                                                str(tmp_path / "bad.npz"))


def test_not_an_npz_archive(tmp_path):
    write(tmp_path / "text.npz", "hello")
    assert "not an NPZ archive" in error_text(load_source, str(tmp_path / "text.npz"))


# ---- specs that do not work --------------------------------------------------------------------

def test_missing_files_and_unknown_specs(tmp_path):
    assert f"{tmp_path / 'gone.csv'}: no such file" in error_text(load_source,
                                                                  str(tmp_path / "gone.csv"))
    assert "no such file" in error_text(load_source, str(tmp_path / "gone.npz"))
    message = error_text(load_source, "mnsit")
    assert "unknown data source 'mnsit'" in message and "did you mean 'mnist'" in message
    assert "digits" in message and ".csv" in message and ".npz" in message
    write(tmp_path / "notes.txt", "1,2\n")
    assert "not a format netsharp reads" in error_text(load_source, str(tmp_path / "notes.txt"))
    assert "CSV files only" in error_text(load_source, "digits", label="label")
    assert "unknown task" in error_text(load_source, "digits", task="ranking")
    assert "cannot be trained as regression" in error_text(load_source, "digits",
                                                           task="regression")


# ---- normalization ---------------------------------------------------------------------------

def round_trip(normalizer: Normalizer) -> Normalizer:
    return Normalizer.from_dict(json.loads(json.dumps(normalizer.to_dict())))


def test_scale_divides_by_the_pixel_maximum():
    x = np.array([[0, 8, 16]], dtype=np.uint8)
    normalizer = fit_normalizer("scale", x, pixel_max=16)
    assert normalizer.apply(x).tolist() == [[0.0, 0.5, 1.0]]
    assert normalizer.apply(x).dtype == np.float32
    assert round_trip(normalizer) == normalizer
    assert normalizer.describe() == "scale: values divided by 16"


def test_scale_without_a_known_maximum_looks_at_the_values():
    pixels = np.array([[0.0, 255.0], [17.0, 3.0]], dtype=np.float32)
    assert fit_normalizer("scale", pixels).apply(pixels)[0, 1] == pytest.approx(1.0)
    measurements = np.array([[0.5, 300.0]], dtype=np.float32)
    for x in (measurements, np.array([[0, 1], [1, 1]], dtype=np.uint8)):
        normalizer = fit_normalizer("scale", x)
        np.testing.assert_array_equal(normalizer.apply(x), x)
        assert "as they are" in normalizer.describe()


def test_minmax_uses_the_training_statistics():
    train = np.array([[0.0, 10.0, 5.0], [4.0, 20.0, 5.0]])
    normalizer = fit_normalizer("minmax", train)
    assert normalizer.apply(train).tolist() == [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    test = np.array([[8.0, 15.0, 7.0]])
    assert normalizer.apply(test).tolist() == [[2.0, 0.5, 0.0]]   # outside [0, 1]; constant -> 0
    assert round_trip(normalizer) == normalizer
    assert "fitted on 3" in error_text(normalizer.apply, np.zeros((1, 2)))


def test_none_keeps_the_values_as_float32():
    x = np.array([[3, 300]], dtype=np.int64)
    normalizer = fit_normalizer("none", x)
    out = normalizer.apply(x)
    assert out.tolist() == [[3.0, 300.0]] and out.dtype == np.float32
    assert round_trip(normalizer) == normalizer


@pytest.mark.parametrize("document, problem", [
    ({"kind": "zscore"}, "unknown normalization 'zscore'"),
    ("scale", "unknown normalization 'scale'"),
    ({"kind": "minmax", "offset": [0.0, 1.0], "scale": [1.0]}, "two lists of the same length"),
    ({"kind": "minmax", "offset": 0.0, "scale": 1.0}, "one offset and one scale per feature"),
    ({"kind": "scale", "offset": [0.0], "scale": [1.0]}, "not lists"),
    ({"kind": "scale", "offset": 0.0, "scale": 0.0}, "must be positive"),
    ({"kind": "scale", "offset": 0.0, "scale": "x"}, "a number or a list of numbers"),
    ({"kind": "none", "offset": 1.0, "scale": 1.0}, "offset 0 and scale 1"),
])
def test_from_dict_refuses_malformed_documents(document, problem):
    assert problem in error_text(Normalizer.from_dict, document)


def test_fit_refuses_unknown_kinds():
    message = error_text(fit_normalizer, "zscore", np.zeros((1, 1)))
    assert "use one of scale, minmax, none" in message


# ---- predict inputs --------------------------------------------------------------------------

def save_png(path, pixels, mode="L"):
    image = Image.fromarray(np.asarray(pixels, dtype=np.uint8), "L")
    image.convert(mode).save(path)
    return path


def test_png_files_and_directories(tmp_path):
    first = save_png(tmp_path / "b.png", np.full((3, 4), 200))
    second = save_png(tmp_path / "a.png", np.arange(12).reshape(3, 4), mode="RGB")
    inputs = read_inputs([str(first), str(tmp_path)])
    assert inputs.x.shape == (3, 12) and inputs.x.dtype == np.uint8
    assert inputs.names == (str(first), str(second), str(first))   # a directory sorted by name
    assert inputs.x[1].tolist() == list(range(12)) and set(inputs.x[0]) == {200}
    assert (inputs.pixel_max, inputs.sample_shape) == (255.0, (3, 4))


def test_images_of_another_size_are_an_error(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((3, 4)))
    odd = save_png(tmp_path / "b.png", np.zeros((4, 4)))
    message = error_text(read_inputs, [str(tmp_path)])
    assert f"{odd}: 4x4 pixels" in message and "never resizes" in message
    write(tmp_path / "c.png", "not a png")
    assert "not an image Pillow can read" in error_text(read_inputs, [str(tmp_path / "c.png")])


def test_idx_inputs(tmp_path):
    images = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)
    header = bytes([0, 0, 0x08, 3]) + b"".join(d.to_bytes(4, "big") for d in images.shape)
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(header + images.tobytes()))
    inputs = read_inputs([str(path)])
    np.testing.assert_array_equal(inputs.x, images.reshape(2, 9))
    assert inputs.names == (f"{path}[0]", f"{path}[1]") and inputs.sample_shape == (3, 3)
    labels = tmp_path / "labels-idx1-ubyte"
    labels.write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 2, 7, 1]))
    assert "rank 1 (labels?)" in error_text(read_inputs, [str(labels)])


def test_csv_and_npz_inputs_drop_the_label(tmp_path):
    path = write(tmp_path / "in.csv", "a,b,label\n1.5,2,0\n3,4,1\n")
    inputs = read_inputs([str(path)])
    assert inputs.x.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert inputs.names == (f"{path}:2", f"{path}:3") and inputs.pixel_max is None
    assert read_inputs([str(path)], label="a").x.tolist() == [[2.0, 0.0], [4.0, 1.0]]
    np.savez(tmp_path / "in.npz", x_test=np.ones((2, 2, 2), dtype=np.uint8), y_test=np.zeros(2))
    inputs = read_inputs([str(tmp_path / "in.npz")])
    assert inputs.x.shape == (2, 4) and inputs.pixel_max is None   # the training units


def test_inputs_must_agree_on_the_feature_count(tmp_path):
    save_png(tmp_path / "a.png", np.zeros((2, 2)))
    csv_path = write(tmp_path / "in.csv", "1,2,3\n")
    message = error_text(read_inputs, [str(tmp_path / "a.png"), str(csv_path)])
    assert f"{csv_path}: 3 features per row, but" in message
    assert "no such file" in error_text(read_inputs, [str(tmp_path / "missing.png")])
    write(tmp_path / "notes.txt", "hello")
    assert "not an input format" in error_text(read_inputs, [str(tmp_path / "notes.txt")])
