"""The demo model (35.9M parameters) and its synthetic Hessians: the package
writes the bytes `pgq quantize` writes, with the default recipe's GPTQ and
the default codec (auto: rANS for the codes), and the package and the
reference decoder load what `pgq export` writes."""

import pgq
from conftest import REPO, assert_loads_as_exported, read_safetensors


def test_the_package_and_the_cli_agree_on_the_demo_model(demo_dir, tmp_path, pgq_cli):
    model, hessians = demo_dir / "demo.safetensors", demo_dir / "demo-hessians.safetensors"
    recipe = REPO / "recipes" / "default.toml"
    out = tmp_path / "cli.pgq"
    pgq_cli("quantize", model, "-o", out, "--recipe", recipe, "--hessians", hessians)
    ours = pgq.quantize(
        read_safetensors(model),
        recipe=recipe,
        hessians=read_safetensors(hessians),
        progress=False,
    )
    assert ours.bytes == out.read_bytes()
    assert any(t["method"].startswith("gptq") for t in ours.report["tensors"])
    assert_loads_as_exported(pgq_cli, out, tmp_path)
