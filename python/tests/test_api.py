"""pgq's Python API against the CLI: the same bytes for the same tensors,
the same weights back, typed errors."""

import json

import numpy as np
import pytest

import pgq
from conftest import REPO, assert_loads_as_exported, read_safetensors

RECIPE = REPO / "recipes" / "default.toml"


def small_model(seed=0):
    """A few tensors with parameter-golf names: kept, int8, int6."""
    rng = np.random.default_rng(seed)
    return {
        "tok_emb.weight": rng.standard_t(4, (1024, 96)).astype(np.float32) * 0.02,
        "blocks.0.attn.c_q.weight": rng.standard_t(4, (384, 192)).astype(np.float32) * 0.05,
        "blocks.0.mlp.fc.weight": rng.standard_t(4, (512, 192)).astype(np.float32) * 0.05,
        "blocks.0.attn_scale": np.ones(192, dtype=np.float32),
    }


def test_import_and_version():
    assert pgq.__version__
    assert pgq.CAP_BYTES == 16_000_000
    assert issubclass(pgq.FormatError, pgq.PgqError)


def test_quantize_writes_a_valid_artifact_with_a_report(tmp_path):
    model = small_model()
    artifact = pgq.quantize(model, progress=False)
    assert bytes(artifact) == artifact.bytes and len(artifact) > 0
    report = artifact.report
    assert report["file_bytes"] == len(artifact)
    assert report["headroom_bytes"] == pgq.CAP_BYTES - len(artifact)
    methods = {t["name"]: t["method"] for t in report["tensors"]}
    assert methods["tok_emb.weight"] == "rtn-sdclip k=20 int8"
    assert methods["blocks.0.mlp.fc.weight"] == "rtn-sdclip k=12.85 int6"
    assert methods["blocks.0.attn_scale"] == "keep-f16"
    path = tmp_path / "m.pgq"
    artifact.save(path)
    assert path.read_bytes() == artifact.bytes
    assert list(tmp_path.iterdir()) == [path], "no temporary file left behind"
    back = pgq.load(path)
    assert list(back) == list(model)
    for name, values in back.items():
        assert values.dtype == np.float32 and values.shape == model[name].shape
    assert np.array_equal(back["blocks.0.attn_scale"], model["blocks.0.attn_scale"])


def test_the_package_and_the_cli_write_the_same_bytes_and_weights(tmp_path, pgq_cli):
    from safetensors.numpy import save_file

    model = small_model(1)
    source = tmp_path / "m.safetensors"
    save_file(model, str(source))
    ordered = read_safetensors(source)  # the order the CLI reads
    for codec in ("auto", "rans", "brotli", "zstd", "raw"):
        out = tmp_path / f"cli-{codec}.pgq"
        pgq_cli("quantize", source, "-o", out, "--codec", codec)
        ours = pgq.quantize(ordered, codec=codec, progress=False)
        assert ours.bytes == out.read_bytes(), codec
    assert_loads_as_exported(pgq_cli, out, tmp_path)


def test_torch_tensors_of_every_float_dtype_and_one_digest():
    torch = pytest.importorskip("torch")
    model = small_model(2)
    # Values bf16 holds exactly, so f32, bf16 and f64 copies are one model.
    exact = {k: torch.from_numpy(v).bfloat16().float() for k, v in model.items()}
    as_f32 = pgq.quantize(exact, progress=False)
    as_bf16 = pgq.quantize({k: v.bfloat16() for k, v in exact.items()}, progress=False)
    as_f64 = pgq.quantize({k: v.double().numpy() for k, v in exact.items()}, progress=False)
    assert as_f32.bytes == as_bf16.bytes == as_f64.bytes
    # A transposed view is copied to C order, not misread.
    t = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4).T}
    assert np.array_equal(pgq.load(pgq.quantize(t, progress=False))["w"], t["w"].numpy())
    # The digest covers content: order and container do not matter.
    digest = as_f32.metadata["pgq.source.sha256"]
    assert digest == pgq.tensor_digest(dict(reversed(list(exact.items()))))
    assert digest != pgq.tensor_digest({**exact, "extra": torch.zeros(1)})


def test_integer_buffers_are_refused_unless_dropped():
    model = {**small_model(), "position_ids": np.arange(8, dtype=np.int64)}
    with pytest.raises(TypeError, match="position_ids"):
        pgq.quantize(model, progress=False)
    artifact = pgq.quantize(model, drop_non_float=True, progress=False)
    assert "position_ids" not in pgq.load(artifact)


def test_errors_are_typed_and_say_where(tmp_path):
    model = small_model()
    with pytest.raises(pgq.QuantizeError, match="need a Hessian"):
        pgq.quantize(model, recipe=RECIPE, progress=False)
    with pytest.raises(pgq.UsageError, match="brotli quality"):
        pgq.quantize(model, level=12, progress=False)
    with pytest.raises(pgq.UsageError, match="matches none"):
        pgq.quantize(model, only="nothing.*", progress=False)
    with pytest.raises(pgq.QuantizeError, match="not valid TOML"):
        pgq.quantize(model, recipe="[[rule]\nmatch = 1", progress=False)
    data = bytearray(pgq.quantize(model, progress=False).bytes)
    data[-1] ^= 0xFF  # the last section's stored bytes
    with pytest.raises(pgq.FormatError) as error:
        pgq.load(bytes(data))
    assert error.value.error_class in ("section_crc", "codec_error")
    assert error.value.field and error.value.offset > 0
    with pytest.raises(pgq.FormatError) as error:
        pgq.inspect(b"not a pgq file at all")
    assert error.value.error_class == "bad_magic" and error.value.offset == 0


def test_recipe_as_text_and_gptq_with_hessians():
    rng = np.random.default_rng(3)

    def hessian(cols):
        x = rng.standard_normal((4096, cols)).astype(np.float32)
        x *= np.linspace(0.1, 3, cols, dtype=np.float32)
        return (x.T @ x / len(x)).astype(np.float32)

    h = hessian(192)
    model = small_model(3)
    hessians = {"tok_emb.weight": hessian(96), "blocks.0.attn.c_q.weight": h, "blocks.0.mlp.fc.weight": h}
    artifact = pgq.quantize(model, recipe=RECIPE.read_text(), hessians=hessians, progress=False)
    by_path = pgq.quantize(model, recipe=RECIPE, hessians=hessians, progress=False)
    assert artifact.bytes == by_path.bytes
    rows = {t["name"]: t for t in artifact.report["tensors"]}
    assert rows["blocks.0.mlp.fc.weight"]["method"].startswith("gptq")
    assert rows["blocks.0.mlp.fc.weight"]["hessian_error"] is not None
    meta = artifact.metadata
    assert meta["pgq.hessians.sha256"] == pgq.tensor_digest(hessians)
    # A stray Hessian is a warning, not an error.
    stray = pgq.quantize(model, recipe=RECIPE, hessians={**hessians, "nope": h}, progress=False)
    assert any("nope" in w for w in stray.warnings)


def test_inspect_and_verify_return_the_clis_reports(tmp_path, pgq_cli):
    model = small_model()
    artifact = pgq.quantize(model, progress=False)
    path = tmp_path / "m.pgq"
    artifact.save(path)
    ours = pgq.inspect(path)
    theirs = json.loads(pgq_cli("inspect", path, "--json"))
    theirs.pop("file")
    assert ours == theirs
    report = pgq.verify(artifact, reference=model, code=[__file__])
    assert report["status"] == "pass", [c for c in report["checks"] if c["status"] != "pass"]
    assert any(c["id"].startswith("fidelity.") for c in report["checks"])
    cli = json.loads(pgq_cli("verify", path, "--code", __file__, "--json"))
    assert pgq.verify(path, code=[__file__]) == cli
    ids = {c["id"] for c in report["checks"]}
    assert "digest" in ids
    over = pgq.verify(artifact, cap=100)
    assert over["status"] == "fail"


def test_codes_times_scales_is_what_load_returns():
    model = small_model()
    recipe = """
[[rule]]
match = "*"
max_elements = 65536
keep = true
[[rule]]
match = "tok_emb.weight"
bits = 8
clip = { sdclip = 20.0 }
[[rule]]
match = "*"
bits = 5
group_size = 64
clip = "absmax"
"""
    artifact = pgq.quantize(model, recipe=recipe, progress=False)
    stored = pgq.codes(artifact)
    loaded = artifact.load()
    assert list(stored) == ["tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.mlp.fc.weight"]
    for name, c in stored.items():
        assert c.codes.dtype == np.int8 and c.codes.shape == model[name].shape
        limit = 2 ** (c.bits - 1) - 1
        assert np.abs(c.codes.astype(np.int16)).max() <= limit
        group = c.group_size or c.codes.shape[1]
        assert c.scales.shape == (c.codes.shape[0], -(-c.codes.shape[1] // group))
        scales = np.repeat(c.scales.astype(np.float32), group, axis=1)[:, : c.codes.shape[1]]
        np.testing.assert_array_equal(c.codes.astype(np.float32) * scales, loaded[name])
    assert stored["tok_emb.weight"].bits == 8 and stored["tok_emb.weight"].group_size == 0
    assert stored["blocks.0.mlp.fc.weight"].bits == 5 and stored["blocks.0.mlp.fc.weight"].group_size == 64


def test_an_lqer_recipe_writes_corrections_that_load_and_the_reference_decodes(tmp_path, pgq_cli):
    """A recipe's [lqer] gives the worst tensors a low-rank correction
    (kind 4): the package and the CLI write the same bytes, load() returns
    what the spec's reference decoder computes (the sum order of FORMAT.md
    6.8, bit for bit), and codes() gives the factors that make it."""
    import importlib.util

    from safetensors.numpy import save_file

    source = tmp_path / "model.safetensors"
    save_file(small_model(), str(source))
    model = read_safetensors(source)  # the order the CLI reads
    recipe = """
[[rule]]
match = "*"
max_elements = 65536
keep = true
[[rule]]
match = "*"
bits = 4
clip = { sdclip = 12.85 }
[lqer]
top_k = 2
rank = 4
"""
    artifact = pgq.quantize(model, recipe=recipe, progress=False)
    lqer = artifact.report["lqer"]
    assert len(lqer) == 2 and all(r["error_after"] < r["error_before"] for r in lqer)
    assert artifact.metadata["pgq.lqer"] == ",".join(f"{r['tensor']}=4" for r in lqer)
    kinds = {t["name"]: t["kind"] for t in pgq.inspect(artifact)["tensors"]}
    assert sorted(n for n, k in kinds.items() if k == "lowrank") == sorted(r["tensor"] for r in lqer)
    recipe_file = tmp_path / "lqer.toml"
    recipe_file.write_text(recipe)
    out = tmp_path / "cli.pgq"
    pgq_cli("quantize", source, "-o", out, "--recipe", recipe_file)
    assert out.read_bytes() == artifact.bytes
    spec = importlib.util.spec_from_file_location("pgq_decode", REPO / "spec/reference/pgq_decode.py")
    decoder = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(decoder)
    reference = decoder.load(artifact.bytes)
    for name, values in artifact.load().items():
        assert np.array_equal(values.view(np.uint32), reference[name].view(np.uint32)), name
    # codes(): the stored factors; Q*s + A@B (in the order of FORMAT.md 6.8) is load().
    loaded = artifact.load()
    for name, c in pgq.codes(artifact).items():
        q = c.codes.astype(np.float32) * c.scales.astype(np.float32)
        if c.correction is None:
            assert name not in {r["tensor"] for r in lqer}
            continue
        a, b = (f.dequantize() for f in c.correction)
        assert a.shape == (c.codes.shape[0], 4) and b.shape == (4, c.codes.shape[1])
        assert c.correction[0].range == "full" and c.correction[0].bits == 2
        acc = a[:, :1] * b[:1]
        for k in range(1, 4):
            acc = decoder._fma(a[:, k:k + 1], b[k:k + 1], acc)
        assert np.array_equal((q + acc).view(np.uint32), loaded[name].view(np.uint32)), name


def test_a_budget_fits_the_artifact_and_matches_the_cli(tmp_path, pgq_cli):
    from safetensors.numpy import save_file

    model = small_model(2)
    plain = pgq.quantize(model, progress=False)
    budget = len(plain) * 9 // 10
    fitted = pgq.quantize(model, progress=False, budget=budget)
    assert budget - 2_000 <= len(fitted) <= budget
    assert fitted.report["budget"]["allocation"] == "uniform"
    per_tensor = pgq.quantize(model, progress=False, budget=budget, allocation="per-tensor")
    assert budget - 2_000 <= len(per_tensor) <= budget
    with pytest.raises(pgq.UsageError):
        pgq.quantize(model, progress=False, budget=budget, allocation="greedy")
    report = fitted.report["budget"]
    assert report["budget_bytes"] == budget and report["file_bytes"] == len(fitted)
    assert {t["name"] for t in report["tensors"]} == {
        "tok_emb.weight", "blocks.0.attn.c_q.weight", "blocks.0.mlp.fc.weight"}
    assert "budget" not in plain.report
    # The CLI fits the same tensors to the same bytes.
    source = tmp_path / "m.safetensors"
    save_file(model, str(source))
    out = tmp_path / "fit.pgq"
    pgq_cli("quantize", source, "-o", out, "--budget", str(budget))
    assert pgq.quantize(read_safetensors(source), progress=False, budget=budget).bytes == out.read_bytes()
    with pytest.raises(pgq.QuantizeError, match="smallest artifact"):
        pgq.quantize(model, progress=False, budget=1_000)
