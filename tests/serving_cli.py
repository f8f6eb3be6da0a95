"""Test helpers: send requests to a SavedModel through `saved_model_cli run`.

`cli_run` calls the real `saved_model_cli run` command once (a fresh process that
loads TensorFlow and the model, several seconds each). `cli_batch` sends many
requests in ONE subprocess through the same code path the command uses
(`saved_model_cli`'s meta-graph and signature helpers, the TF1
`saved_model.loader.load` into a `Session`, one `session.run` per request), loading
the model once, so a test module can check every validation rule through the TF1
loader that `saved_model_cli` and TF Serving use without paying a process per rule.

Run as `python -m tests.serving_cli SPEC.json` (what `cli_batch` does).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence

import numpy as np

Request = tuple[str, Mapping[str, np.ndarray]]  # (signature, {input: array}).


def saved_model_cli() -> list[str]:
    """The saved_model_cli of this interpreter's environment."""
    path = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    return (
        [path]
        if os.path.exists(path)
        else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    )


def _env() -> dict[str, str]:
    return dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")


def cli_run(
    path: str, signature: str, inputs: Mapping[str, np.ndarray], workdir: str
) -> tuple[subprocess.CompletedProcess, dict[str, np.ndarray]]:
    """Runs `saved_model_cli run` on one request with `.npy` inputs.

    Returns:
        The finished process (not checked) and the outputs it saved (empty when
        it failed).
    """
    os.makedirs(workdir, exist_ok=True)
    for name, value in inputs.items():
        np.save(os.path.join(workdir, f"{name}.npy"), value)
    spec = ";".join(f"{n}={os.path.join(workdir, n + '.npy')}" for n in inputs)
    out_dir = os.path.join(workdir, "out")
    proc = subprocess.run(
        saved_model_cli()
        + [
            "run",
            "--dir",
            path,
            "--tag_set",
            "serve",
            "--signature_def",
            signature,
            "--inputs",
            spec,
            "--outdir",
            out_dir,
            "--overwrite",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    outputs = {}
    if proc.returncode == 0:
        outputs = {
            f[:-4]: np.load(os.path.join(out_dir, f))
            for f in os.listdir(out_dir)
            if f.endswith(".npy")
        }
    return proc, outputs


def cli_batch(
    requests: Sequence[tuple[str, str, Mapping[str, np.ndarray]]], workdir: str
) -> list[dict[str, np.ndarray] | str]:
    """Runs requests through saved_model_cli's loader in one subprocess.

    Args:
        requests: `(saved_model_dir, signature, {input: array})` triples; each
            model is loaded once.
        workdir: Scratch directory.

    Returns:
        Per request, its outputs by name, or the error message (a string).
    """
    os.makedirs(workdir, exist_ok=True)
    spec = []
    for i, (path, signature, inputs) in enumerate(requests):
        npz = os.path.join(workdir, f"in{i}.npz")
        np.savez(npz, **inputs)
        spec.append(
            {
                "dir": path,
                "signature": signature,
                "inputs": npz,
                "outputs": os.path.join(workdir, f"out{i}.npz"),
                "error": os.path.join(workdir, f"err{i}.txt"),
            }
        )
    spec_path = os.path.join(workdir, "spec.json")
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run(
        [sys.executable, "-m", "tests.serving_cli", spec_path],
        check=False,
        capture_output=True,
        text=True,
        timeout=900,
        env=_env(),
        cwd=root,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"serving_cli subprocess failed:\n{proc.stderr[-3000:]}")
    results: list[dict[str, np.ndarray] | str] = []
    for request in spec:
        if os.path.exists(request["error"]):
            with open(request["error"]) as f:
                results.append(f.read())
        else:
            with np.load(request["outputs"], allow_pickle=True) as data:
                results.append(dict(data))
    return results


def warmup_requests(saved_model_dir: str) -> list[Request]:
    """The export's warm-up requests as `(signature, {input: array})` pairs."""
    import tensorflow as tf  # noqa: PLC0415

    from common import export  # noqa: PLC0415

    return [
        (
            log.predict_log.request.model_spec.signature_name,
            {k: tf.make_ndarray(v) for k, v in log.predict_log.request.inputs.items()},
        )
        for log in export.read_warmup_requests(saved_model_dir)
    ]


def _serve(spec_path: str) -> None:
    """The subprocess: load each model once with the TF1 loader, answer every
    request."""
    import tensorflow as tf  # noqa: PLC0415
    from tensorflow.python.tools import saved_model_cli as cli  # noqa: PLC0415

    with open(spec_path) as f:
        spec = json.load(f)
    sessions: dict[str, tuple] = {}
    try:
        for request in spec:
            path, name = request["dir"], request["signature"]
            if path not in sessions:
                sess = tf.compat.v1.Session(graph=tf.Graph())
                tf.compat.v1.saved_model.loader.load(sess, ["serve"], path)
                sessions[path] = (sess, cli.get_meta_graph_def(path, "serve"))
            sess, meta_graph_def = sessions[path]
            inputs = cli._get_inputs_tensor_info_from_meta_graph_def(  # noqa: SLF001
                meta_graph_def, name
            )
            outputs = cli._get_outputs_tensor_info_from_meta_graph_def(  # noqa: SLF001
                meta_graph_def, name
            )
            keys = sorted(outputs)
            with np.load(request["inputs"]) as data:
                feed = {inputs[k].name: data[k] for k in data.files}
            try:
                values = sess.run([outputs[k].name for k in keys], feed_dict=feed)
            except (tf.errors.OpError, ValueError) as e:
                with open(request["error"], "w") as f:
                    f.write(f"{type(e).__name__}: {e}")
                continue
            np.savez(request["outputs"], **dict(zip(keys, values, strict=True)))
    finally:
        for sess, _ in sessions.values():
            sess.close()


if __name__ == "__main__":
    _serve(sys.argv[1])
