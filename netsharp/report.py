"""What `netsharp compile` shows: a table for people and a JSON document for tools."""

from __future__ import annotations

from . import ir

HEADERS = ("layer", "kind", "shape", "nodes", "function", "bundles", "weights", "mult-adds")
RIGHT_ALIGNED = {"nodes", "weights", "mult-adds"}
KIND_WORDS = {"full": "all", "filtered": "where", "convolve": "convolve", "max_pool": "max pool",
              "mean_pool": "mean pool", "response_norm": "response norm"}


def summary_table(network: ir.Network) -> str:
    rows = [row for layer in network.layers for row in _layer_rows(layer)]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(HEADERS)]
    lines = [_format_row(HEADERS, widths), _format_row(["-" * w for w in widths], widths)]
    lines += [_format_row(row, widths) for row in rows]
    lines.append(_totals(network))
    return "\n".join(line.rstrip() for line in lines)


def _format_row(cells, widths) -> str:
    return "  ".join(c.rjust(w) if h in RIGHT_ALIGNED else c.ljust(w)
                     for c, w, h in zip(cells, widths, HEADERS))


def _layer_rows(layer: ir.Layer) -> list[list[str]]:
    bundles = [_describe_bundle(b) for b in layer.bundles] or [""]
    if layer.bias:
        bundles.append(f"bias [{layer.nodes}]" + (" (shared)" if _bias_shared(layer) else ""))
    first = [layer.name, layer.kind, _shape(layer.shape), f"{layer.nodes:,}",
             layer.activation or "-", bundles[0], f"{layer.weights:,}", f"{layer.macs:,}"]
    return [first] + [["", "", "", "", "", text, "", ""] for text in bundles[1:]]


def _bias_shared(layer: ir.Layer) -> bool:
    return layer.bias != f"{layer.name}.bias"


def _describe_bundle(bundle: ir.Bundle) -> str:
    text = f"{KIND_WORDS[bundle.kind]} from {bundle.source}"
    if bundle.kind == "filtered":
        text += f": {bundle.connections:,} edges"
    if hasattr(bundle, "geometry"):
        text += ": " + _describe_geometry(bundle)
    if bundle.shared:
        text += f" (shares {bundle.param})"
    return text


def _describe_geometry(bundle) -> str:
    g = bundle.geometry
    parts = [f"in {_dims(g.input_shape)}", f"K {_dims(g.kernel_shape)}"]
    if any(s != 1 for s in g.stride):
        parts.append(f"S {_dims(g.stride)}")
    if g.is_padded:
        parts.append(f"pad {_dims(g.lower_pad)}/{_dims(g.upper_pad)}")
    if bundle.kind == "convolve":
        maps = bundle.map_count
        simple = all(m == 1 for m in maps[1:])
        parts.append(f"{maps[0]} maps" if simple else f"maps {_dims(maps)}")
        if not all(bundle.sharing):
            parts.append("sharing " + ",".join("T" if s else "F" for s in bundle.sharing))
        parts.append(f"{bundle.kernel_count} kernels")
    if bundle.kind == "response_norm":
        parts.append(f"alpha {bundle.alpha:g} beta {bundle.beta:g} offset {bundle.offset:g}")
    return ", ".join(parts)


def _dims(values) -> str:
    return "x".join(str(v) for v in values)


def _shape(shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def _totals(network: ir.Network) -> str:
    size = _human_bytes(network.total_weights * 4)
    return (f"\n{network.source.path}: {network.total_weights:,} weights ({size} as float32), "
            f"{network.total_macs:,} multiply-adds per sample, task {network.task}")


def _human_bytes(count: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:,} {unit}" if unit == "bytes" else f"{count:,.1f} {unit}"
        count /= 1024
    return ""


# ---- JSON -------------------------------------------------------------------------------------

def network_dict(network: ir.Network) -> dict:
    return {
        "source": network.source.path,
        "task": network.task,
        "layers": [_layer_dict(layer) for layer in network.layers],
        "parameters": [{"name": p.name, "shape": list(p.shape), "size": p.size}
                       for p in network.parameters],
        "total_weights": network.total_weights,
        "total_macs": network.total_macs,
    }


def _layer_dict(layer: ir.Layer) -> dict:
    return {
        "name": layer.name, "kind": layer.kind, "shape": list(layer.shape), "nodes": layer.nodes,
        "activation": layer.activation, "weights": layer.weights, "macs": layer.macs,
        "bias": layer.bias, "span": _span(layer.span),
        "bundles": [_bundle_dict(b) for b in layer.bundles],
    }


def _bundle_dict(bundle: ir.Bundle) -> dict:
    data = {
        "kind": bundle.kind, "source": bundle.source, "output_shape": list(bundle.output_shape),
        "connections": bundle.connections, "weights": bundle.weights, "macs": bundle.macs,
        "parameter": bundle.param, "shared": bundle.shared, "span": _span(bundle.span),
    }
    if hasattr(bundle, "geometry"):
        data["geometry"] = _geometry_dict(bundle.geometry)
    if bundle.kind == "convolve":
        data.update(map_count=list(bundle.map_count), sharing=list(bundle.sharing),
                    kernel_count=bundle.kernel_count)
    if bundle.kind == "response_norm":
        data.update(alpha=bundle.alpha, beta=bundle.beta, offset=bundle.offset,
                    avg_over_full_kernel=bundle.avg_over_full_kernel)
    return data


def _geometry_dict(geometry) -> dict:
    return {"input_shape": list(geometry.input_shape),
            "kernel_shape": list(geometry.kernel_shape), "stride": list(geometry.stride),
            "positions": list(geometry.positions), "lower_pad": list(geometry.lower_pad),
            "upper_pad": list(geometry.upper_pad), "origin": list(geometry.origin)}


def _span(span) -> dict:
    return {"line": span.line, "col": span.col, "end_line": span.end_line,
            "end_col": span.end_col}
