"""Letter scoring (`core.evaluation.letters`): letter-token handling per tokenizer family, the restricted
distribution on hand-made logits, and the teacher-forced forward through the core wrapper."""

import math

import pytest
import torch
from visionrl.core.chat import IMAGE, Prompt
from visionrl.core.evaluation.letters import (
    letter_stats,
    letter_token_ids,
    next_token_logits,
    scoring_prefill,
)

FAMILIES = ["qwen2_5_vl", "qwen2_vl", "mllama", "llava"]


@pytest.fixture(scope="module")
def demo_image():
    """One rendered shapes image (84 px, the demo model's size)."""
    from visionrl.core.demo_teacher import HELDOUT_SEED, demo_world

    return demo_world(HELDOUT_SEED).mcq(1)[0].images[0]


@pytest.mark.parametrize("family", FAMILIES)
def test_letter_ids_cover_both_spellings(family, tiny_build):
    tok = tiny_build(family).processor.tokenizer
    ids = letter_token_ids(tok, "ABCDE")
    for letter, letter_ids in ids.items():
        assert all(tok.decode([i]).strip() == letter for i in letter_ids)
        for form in (letter, " " + letter):  # every single-token spelling is counted
            enc = tok(form, add_special_tokens=False)["input_ids"]
            if len(enc) == 1:
                assert enc[0] in letter_ids
    # The byte-level tokenizers spell "A" after ">" and " A" after a space with different ids.
    assert tok(" A", add_special_tokens=False)["input_ids"] != tok("A", add_special_tokens=False)["input_ids"]
    assert len(ids["A"]) == 2
    assert len({i for v in ids.values() for i in v}) == sum(len(v) for v in ids.values())  # disjoint


def test_sentencepiece_style_tokenizer():
    """Metaspace ("▁A") vocabularies: the word-initial and the bare spelling both count."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "\u2581A": 1, "\u2581B": 2, "A": 3, "<answer>": 4}
    raw = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    raw.pre_tokenizer = pre_tokenizers.Metaspace()
    raw.decoder = decoders.Metaspace()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, unk_token="[UNK]")
    assert letter_token_ids(tok, "AB") == {"A": [1, 3], "B": [2]}
    with pytest.raises(ValueError, match="'C' is not a single token"):
        letter_token_ids(tok, "ABC")


def test_restricted_distribution_on_hand_made_logits():
    """Vocab of 6; letter A is spelled by ids 1 and 4, B by 2, C by 3; id 0 (not a letter) is ignored.

    Row 0: every letter id has logit 0, so the masses are A = e^0 + e^0 = 2, B = 1, C = 1:
        p = (1/2, 1/4, 1/4), H = ½ln2 + 2·¼ln4 = 1.5·ln2, H/ln3; gold B -> P(correct) = 1/4.
    Row 1: C is not an option; A's ids have logits ln3 and -1e9, B has 0: p = (3/4, 1/4, 0),
        H = -(¾ln¾ + ¼ln¼) = 0.5623, H/ln2 = 0.8113; gold A -> 3/4.
    """
    logits = torch.tensor([[9.0, 0.0, 0.0, 0.0, 0.0, 5.0], [9.0, math.log(3), 0.0, 7.0, -1e9, 5.0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    st = letter_stats(logits, [[1, 4], [2], [3]], valid, torch.tensor([1, 0]))
    torch.testing.assert_close(st.probs_BK, torch.tensor([[0.5, 0.25, 0.25], [0.75, 0.25, 0.0]]))
    torch.testing.assert_close(st.p_correct_B, torch.tensor([0.25, 0.75]))
    h0, h1 = 1.5 * math.log(2), -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    torch.testing.assert_close(st.entropy_B, torch.tensor([h0, h1]))
    torch.testing.assert_close(st.entropy_norm_B, torch.tensor([h0 / math.log(3), h1 / math.log(2)]))


def test_uniform_and_certain_extremes():
    logits = torch.tensor([[0.0, 0.0, 0.0, 0.0], [0.0, 50.0, 0.0, 0.0]])
    st = letter_stats(logits, [[0], [1], [2], [3]], torch.ones(2, 4, dtype=torch.bool), torch.tensor([0, 1]))
    torch.testing.assert_close(st.entropy_norm_B, torch.tensor([1.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(st.p_correct_B, torch.tensor([0.25, 1.0]), atol=1e-6, rtol=0)


@pytest.mark.parametrize(
    ("prefix", "completion", "expected"),
    [
        ("", "<think>red</think><answer>B</answer>", "<think>red</think><answer>"),
        ("<think>So B.", " no, red</think><answer>D</answer>", "<think>So B. no, red</think><answer>"),
        ("<think>So B.", " no, red</think> D", "<think>So B. no, red</think><answer>"),
        ("<think>So B, but I think", " it is D", "<think>So B, but I think it is D</think><answer>"),
        (
            "<think>Okay let's see. This should be the final answer.</think>",
            "<answer>C</answer>",
            "<think>Okay let's see. This should be the final answer.</think><answer>",
        ),
        ("", "C", "C<answer>"),
    ],
)
def test_scoring_prefill(prefix, completion, expected):
    assert scoring_prefill(prefix, completion) == expected


@pytest.mark.parametrize("family", FAMILIES)
def test_next_token_logits_match_a_plain_forward(family, tiny_vlm, demo_image):
    """The batched, left-padded wrapper forward gives each prompt's own last-position logits."""
    vlm = tiny_vlm(family)
    prompts = [
        Prompt(
            [IMAGE, "What color is the shape on the left?"],
            [demo_image],
            prefill="<think>red</think><answer>",
        ),
        Prompt([IMAGE, "Q?"], [demo_image.rotate(90)], prefill="<answer>"),
    ]
    batched = next_token_logits(vlm, prompts)
    for b, p in enumerate(prompts):
        enc = vlm.encode([p])
        vlm.adapter.reset_state(vlm.model)
        with torch.no_grad():
            ref = vlm.model(**enc, **vlm.adapter.positions(enc)).logits[0, -1].float()
        keep = torch.ones_like(ref, dtype=torch.bool)
        keep[vlm.suppress_ids] = False  # the wrapper masks vision tokens
        torch.testing.assert_close(batched[b][keep], ref[keep], atol=2e-4, rtol=1e-4)


def test_doctests():
    import doctest

    from visionrl.core.evaluation import letters

    result = doctest.testmod(letters)
    assert result.attempted > 0 and result.failed == 0
