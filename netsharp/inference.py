"""The workflows behind `netsharp evaluate` and `netsharp predict`: a saved model, raw data
prepared exactly as in training (the model file keeps its normalizer), figures and labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import DataError


def load_model(path: str | Path):
    from .model import load

    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such model file")
    if path.is_dir():
        hint = path / "model.safetensors"
        raise DataError(f"{path}: is a directory, not a model file",
                        notes=(f"did you mean {hint}?",) if hint.is_file() else ())
    return load(path)


def prepare(model, x: np.ndarray, what: str, pixel_max: float | None = None) -> np.ndarray:
    """Raw data -> the network's input, as the training run prepared its data.

    `pixel_max` is the full scale of these inputs when known (255 for images): when the
    training data had another (16 for the 8x8 digits), the inputs are first brought to the
    training data's units, so a PNG of a digit means what the training pixels meant."""
    from .data.normalize import Normalizer

    features = sum(layer.nodes for layer in model.network.inputs)
    x = np.asarray(x).reshape(len(x), -1)
    if x.shape[1] != features:
        raise DataError(f"{what} has {x.shape[1]:,} features per sample, but the model's input "
                        f"layer(s) take {features:,}")
    preprocessing = model.preprocessing or {}
    trained_max = preprocessing.get("pixel_max")
    if pixel_max and trained_max and pixel_max != trained_max:
        x = x.astype(np.float32) * np.float32(trained_max / pixel_max)
    if "normalize" not in preprocessing:
        return x.astype(np.float32)
    return Normalizer.from_dict(preprocessing["normalize"]).apply(x)


def evaluate(model_path, data_spec: str, *, split: str = "test", cache=None,
             label=None) -> dict:
    """Loss, accuracy (or MSE), per-class accuracy and the confusion matrix on a data set."""
    from .data.sources import load_source
    from .training_report import per_class_accuracy

    model = load_model(model_path)
    data = load_source(data_spec, cache=cache, label=label, seed=model.seed)
    x_raw, y = (data.x_test, data.y_test) if split == "test" else (data.x_train, data.y_train)
    if len(y) == 0:
        raise DataError(f"{data.name} has no {split} samples")
    x = prepare(model, x_raw, f"{data.name} ({split})", data.pixel_max)
    scores, outputs = model.evaluate_with_outputs(x, y)
    result = {"model": str(model_path), "data": data.name, "split": split, "samples": len(y),
              **scores}
    if model.network.task == "regression":
        return result
    matrix, result["class_names"] = confusion(model, outputs, y)
    result["per_class_accuracy"] = [None if np.isnan(a) else float(a)
                                    for a in per_class_accuracy(matrix)]
    result["confusion_matrix"] = matrix.tolist()
    return result


def confusion(model, outputs: np.ndarray, y) -> tuple[np.ndarray, list[str]]:
    """The confusion matrix of a classifier's outputs against labels, and the class names."""
    from .model import class_indices
    from .training_report import confusion_matrix

    classes = max(model.network.output.nodes, 2)
    return confusion_matrix(y, class_indices(outputs), classes), class_names(model, classes)


def class_names(model, classes: int) -> list[str]:
    names = list(model.class_names)
    return names if len(names) == classes else [str(c) for c in range(classes)]


def format_evaluation(result: dict) -> str:
    lines = [f"{result['model']} on {result['data']} ({result['split']}, "
             f"{result['samples']:,} samples)", f"loss      {result['loss']:.4f}"]
    if "mse" in result:
        lines.append(f"mse       {result['mse']:.6f}")
        return "\n".join(lines)
    lines.append(f"accuracy  {result['accuracy']:.2%}")
    names, matrix = result["class_names"], result["confusion_matrix"]
    width = max(6, *(len(n) for n in names))
    cell = max(5, len(str(max(max(row) for row in matrix))) + 1)
    lines.append("")
    lines.append("confusion matrix (rows: true class, columns: predicted)")
    lines.append(" " * width + "".join(f"{i:>{cell}}" for i in range(len(names)))
                 + "  accuracy")
    for i, (name, row) in enumerate(zip(names, matrix)):
        accuracy = result["per_class_accuracy"][i]
        shown = "-" if accuracy is None else f"{accuracy:.1%}"
        lines.append(f"{name:<{width}}" + "".join(f"{v:>{cell}}" for v in row)
                     + f"  {shown:>8}")
    legend = [f"{i}={n}" for i, n in enumerate(names) if n != str(i)]
    if legend:
        lines.append("columns: " + ", ".join(legend))
    return "\n".join(lines)


def predict(model_path, inputs: list[str], top: int = 1) -> list[dict]:
    """One record per input sample: its name, the predicted label and the top probabilities
    (classification), or the output values (regression)."""
    from .data.inputs import read_inputs

    model = load_model(model_path)
    batch = read_inputs(inputs)
    x = prepare(model, batch.x, ", ".join(inputs), batch.pixel_max)
    outputs = model.predict(x)
    if model.network.task == "regression":
        return [{"input": name, "values": [float(v) for v in row]}
                for name, row in zip(batch.names, outputs)]
    classes = max(model.network.output.nodes, 2)
    names = class_names(model, classes)
    return [_classified(name, row, names, top) for name, row in zip(batch.names, outputs)]


def _classified(name: str, row: np.ndarray, names: list[str], top: int) -> dict:
    probabilities = np.array([1 - row[0], row[0]]) if len(row) == 1 else row
    order = np.argsort(-probabilities, kind="stable")[:top]
    return {"input": name, "label": names[order[0]], "class": int(order[0]),
            "probability": float(probabilities[order[0]]),
            "top": [{"label": names[c], "class": int(c), "probability": float(probabilities[c])}
                    for c in order]}


def format_predictions(records: list[dict]) -> str:
    if records and "values" in records[0]:
        return "\n".join(f"{r['input']}  " + " ".join(f"{v:.6g}" for v in r["values"])
                         for r in records)
    width = max(len(r["input"]) for r in records) if records else 0
    lines = []
    for r in records:
        others = "  ".join(f"{t['label']} {t['probability']:.1%}" for t in r["top"][1:])
        lines.append(f"{r['input']:<{width}}  {r['label']}  {r['probability']:.1%}"
                     + (f"   ({others})" if others else ""))
    return "\n".join(lines)
