"""The Colab notebook, executed end to end with the tiny preset on CPU (papermill-style parameters)."""

import json
import sys

import pytest

from helpers import ROOT

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

NOTEBOOK = ROOT / "notebooks" / "bondhu_colab.ipynb"
KERNEL = "bondhu-test-venv"


def inject_parameters(nb, params: dict):
    """Insert a cell tagged ``injected-parameters`` right after the ``parameters`` cell, as papermill does."""
    cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    where = next(i for i, c in enumerate(cells) if "parameters" in c.metadata.get("tags", []))
    source = "# Parameters\n" + "".join(f"{k} = {v!r}\n" for k, v in params.items())
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
    cell["id"] = "injected-parameters"
    nb.cells = cells[: where + 1] + [cell] + cells[where + 1 :]
    return nb


def venv_kernel(tmp_path):
    """A kernel manager whose kernel is this interpreter (the venv's), not whatever `python` is on PATH."""
    from jupyter_client import AsyncKernelManager
    from jupyter_client.kernelspec import KernelSpecManager

    spec = tmp_path / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Bondhu test (venv)",
                "language": "python",
            }
        ),
        "utf-8",
    )
    return AsyncKernelManager(kernel_name=KERNEL, kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(spec.parent)]))


def text_of(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out and "text/plain" in out.data:
            parts.append(out.data["text/plain"])
    return "".join(parts)


def cell_with(nb, needle: str):
    return next(c for c in nb.cells if c.cell_type == "code" and needle in c.source)


def test_notebook_structure():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and 'PRESET = "configs/llama31-8b-t4.yaml"' in params[0].source
    assert "INSTALL = True" in params[0].source
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert '"-e", f"{repo}[gpu]"' in code and "check=True" in code and "!bondhu" not in code
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook without outputs"
    assert nb.cells[0].cell_type == "markdown" and "বন্ধু" in nb.cells[0].source


@pytest.mark.timeout(300)
def test_notebook_runs_end_to_end_with_the_tiny_preset(tiny_model_dir, tmp_path):
    from nbclient import NotebookClient

    runs = tmp_path / "runs"
    nb = inject_parameters(
        nbformat.read(NOTEBOOK, as_version=4),
        {
            "PRESET": "configs/tiny-cpu.yaml",
            "RUN_NAME": "nb-test",
            "OVERRIDES": [
                f"model.name_or_path={tiny_model_dir}",
                "model.tiny=null",
                f"output.runs_dir={runs}",
                "training.max_steps=4",
                "training.logging_steps=1",
                "evaluation.max_new_tokens=8",
                "generation.max_new_tokens=16",
            ],
            "RESUME": False,
            "EVAL_ARGS": ["--max-samples", "2", "--no-base"],
            "INSTALL": False,
            "REQUIRE_GPU": False,
        },
    )
    # Any failing cell (a CLI exit code via check=True, an assert) raises CellExecutionError here.
    NotebookClient(nb, km=venv_kernel(tmp_path), timeout=240, resources={"metadata": {"path": str(ROOT)}}).execute()

    gpu = text_of(cell_with(nb, "torch.cuda.is_available()"))
    assert f"({sys.executable})" in gpu, gpu  # the kernel really ran on the venv's interpreter

    run = runs / "nb-test"
    assert (run / "adapter" / "adapter_config.json").is_file()
    summary = json.loads((run / "summary.json").read_text("utf-8"))
    assert summary["steps"] == 4 and summary["name"] == "nb-test"
    assert "4 steps" in text_of(cell_with(nb, 'bondhu("train"'))

    metrics = json.loads((run / "eval" / "metrics.json").read_text("utf-8"))
    assert metrics["samples"] == 2 and set(metrics["results"]) == {"fine-tuned"}

    chat = text_of(cell_with(nb, "ChatSession.from_run"))
    reply = chat.split("বন্ধু:", 1)[1].strip()
    assert reply, chat

    crisis = text_of(cell_with(nb, "session.reset()"))
    assert "14416" in crisis and "09612119911" in crisis and "is_crisis=True" in crisis
