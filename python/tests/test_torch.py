"""pgq.torch with a real model in the loop: a small GPT trained here,
Hessians from its own batches, RTN, one-shot and sequential GPTQ, each
artifact loaded back and scored by held-out loss."""

import copy

import pytest

torch = pytest.importorskip("torch")

import pgq  # noqa: E402
import pgq.torch  # noqa: E402
from figures import record  # noqa: E402
from models import batches, loss, trained  # noqa: E402


def recipe(method, bits, k):
    """The field's numbers on this model's names; small tensors kept (the
    model is small, so the keep threshold is 4,096 elements, not 65,536)."""
    gptq = "act_order = true\ndamp = 0.01\nblock_size = 128" if method == "gptq" else ""
    return f"""
[defaults]
method = "{method}"
{gptq}

[[rule]]
match = "*"
max_elements = 4096
keep = true

[[rule]]
match = "tok_emb.weight"
bits = 8
clip = {{ sdclip = 20.0 }}

[[rule]]
match = "blocks.*.weight"
bits = {bits}
clip = {{ sdclip = {k} }}
"""


@pytest.fixture(scope="module")
def gpt():
    torch.manual_seed(0)
    model, train, held = trained()
    calibration = [b[:, :-1] for b in batches(train, 16, 64, 8, 7)]
    return model, calibration, held


def test_collect_hessians_sees_every_linear_and_the_tied_head(gpt):
    model, calibration, _ = gpt
    h = pgq.torch.collect_hessians(model, calibration, tied_inputs={"tok_emb.weight": model.final_norm})
    linear = {n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    assert set(h) == {f"{n}.weight" for n in linear} | {"tok_emb.weight"}
    assert h.tokens_seen == h.tokens_used == 8 * 16 * 64
    for name, matrix in h.items():
        assert matrix.dtype == torch.float32 and torch.allclose(matrix, matrix.T), name
        assert torch.linalg.eigvalsh(matrix.double()).min() > -1e-4, name
    # Excluding tokens leaves them out of the count and of every Hessian.
    some = h.tokens_used
    fewer = pgq.torch.collect_hessians(model, calibration, exclude_token_ids=[0, 1, 2, 3])
    ids = torch.cat([b.reshape(-1) for b in calibration])
    assert fewer.tokens_used == some - int(torch.isin(ids, torch.tensor([0, 1, 2, 3])).sum())


def test_one_shot_and_sequential_gptq_with_the_model_in_the_loop(gpt):
    model, calibration, held = gpt
    float_loss = loss(model, held)
    float_state = copy.deepcopy(model.state_dict())
    tied = {"tok_emb.weight": model.final_norm}
    figures = {"float_loss": round(float_loss, 4)}
    for bits, k in ((6, 12.85), (4, 5.0)):
        for name, method, sequential in (
            ("rtn", "rtn", False),
            ("gptq", "gptq", False),
            ("gptq-sequential", "gptq", True),
        ):
            model.load_state_dict(float_state)
            artifact = pgq.torch.quantize_model(
                model,
                calibration,
                recipe(method, bits, k),
                sequential=sequential,
                tied_inputs=tied,
                progress=False,
            )
            # The model now holds exactly the artifact's weights.
            for w_name, values in pgq.load(artifact).items():
                assert torch.equal(pgq.torch.weights(model)[w_name], torch.from_numpy(values.copy()))
            figures[f"int{bits}_{name}_loss"] = round(loss(model, held), 4)
            figures[f"int{bits}_{name}_bytes"] = len(artifact)
    model.load_state_dict(float_state)
    record("small_gpt", **figures)
    for key, value in figures.items():
        if key.endswith("_loss") and key != "float_loss":
            # Quantized, the model still predicts: far from the uniform 5.55.
            assert float_loss <= value + 0.02 < float_loss + 0.5, (key, figures)
    assert figures["int6_gptq_loss"] < float_loss + 0.05, figures


def test_load_false_restores_the_float_weights_and_load_into_is_strict(gpt):
    model, calibration, _ = gpt
    before = {k: v.clone() for k, v in pgq.torch.weights(model).items()}
    artifact = pgq.torch.quantize_model(
        model, calibration, recipe("gptq", 6, 12.85), sequential=True, load=False,
        tied_inputs={"tok_emb.weight": model.final_norm}, progress=False,
    )
    for name, value in pgq.torch.weights(model).items():
        assert torch.equal(value, before[name]), name
    partial = pgq.quantize({"tok_emb.weight": before["tok_emb.weight"]}, progress=False)
    with pytest.raises(ValueError, match="lacks weights"):
        pgq.torch.load_into(model, partial)
    pgq.torch.load_into(model, partial, strict=False)
    stranger = pgq.quantize({"not.in.model": torch.zeros(4)}, progress=False)
    with pytest.raises(ValueError, match="not weights of the model"):
        pgq.torch.load_into(model, stranger, strict=False)
    pgq.torch.load_into(model, artifact)
    assert pgq.torch.default_groups(before) == ["blocks.0.*", "blocks.1.*"]


def test_gptq_without_hessians_for_a_weight_is_a_clear_error(gpt):
    model, calibration, _ = gpt
    # Without tied_inputs nothing reaches tok_emb.weight's Hessian.
    text = recipe("gptq", 6, 12.85).replace('match = "tok_emb.weight"', 'match = "tok_emb.weight"\nmethod = "gptq"')
    with pytest.raises(pgq.QuantizeError, match="tok_emb.weight"):
        pgq.torch.quantize_model(model, calibration, text, load=False, progress=False)
