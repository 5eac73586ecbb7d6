"""Letter-distribution uncertainty (robustness-cot.md §1.4): P(correct letter) and restricted letter entropy.

One teacher-forced forward per (item, variant): the prompt, the assistant prefill, the model's own
completion up to and including `<answer>` (teacher-forcing `</think><answer>` when the completion did not
write it), then the next-token logits. Those logits are restricted to the option letters and renormalised:

    p_k = softmax_k( logsumexp_{t ∈ ids(letter_k)} logit_t )      H = -Σ_k p_k ln p_k,   H / ln K

Tokenisers spell a letter after `>` as "A" but after a space as " A" (byte-level BPE "ĠA", SentencePiece
"▁A"); the mass of every single-token spelling of a letter is summed (logsumexp of the logits), so the
measure does not depend on which spelling a tokenizer prefers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import torch

ANSWER_OPEN, THINK_OPEN, THINK_CLOSE = "<answer>", "<think>", "</think>"


def letter_token_ids(tokenizer: Any, letters: Sequence[str]) -> dict[str, list[int]]:
    """Ids of every single-token spelling of each letter ("A", " A", and the vocab's "ĠA"/"▁A" tokens).

    Raises ValueError when a letter has no single-token spelling or two letters share a token.
    """
    out: dict[str, list[int]] = {}
    unk = getattr(tokenizer, "unk_token_id", None)
    for letter in letters:
        ids: set[int] = set()
        for form in (letter, " " + letter):
            enc = tokenizer(form, add_special_tokens=False)["input_ids"]
            if len(enc) == 1:
                ids.add(int(enc[0]))
        for token in (letter, "\u0120" + letter, "\u2581" + letter):  # byte-level "Ġ", SentencePiece "▁"
            tid = tokenizer.convert_tokens_to_ids(token)
            if isinstance(tid, int) and tid >= 0 and tid != unk:
                ids.add(tid)
        # keep only ids that really spell the letter (a vocab hit such as "Ġ" + "A" may be something else)
        ids = {i for i in ids if tokenizer.decode([i]).strip() == letter}
        if not ids:
            raise ValueError(f"option letter {letter!r} is not a single token for this tokenizer")
        out[letter] = sorted(ids)
    seen: dict[int, str] = {}
    for letter, ids in out.items():
        for i in ids:
            if i in seen:
                raise ValueError(f"letters {seen[i]!r} and {letter!r} share token id {i}")
            seen[i] = letter
    return out


class LetterStats(NamedTuple):
    probs_BK: torch.Tensor  # (B, K) restricted, renormalised distribution (0 where a letter is not an option)
    p_correct_B: torch.Tensor  # (B,) probability of the gold letter
    entropy_B: torch.Tensor  # (B,) natural-log entropy over the item's own letters
    entropy_norm_B: torch.Tensor  # (B,) entropy / ln K_i (K_i = the item's number of options)


def letter_stats(
    logits_BV: torch.Tensor, letter_ids: Sequence[Sequence[int]], valid_BK: torch.Tensor, gold_B: torch.Tensor
) -> LetterStats:
    """Restricted letter distribution, P(correct) and entropy from next-token logits.

    Args:
        logits_BV: next-token logits right after `<answer>`.
        letter_ids: for each of the K letters, its token ids (`letter_token_ids`).
        valid_BK: True where letter k is an option of item b (items may have 2..K options).
        gold_B: index in 0..K-1 of each item's gold letter.
    """
    logits_BV = logits_BV.float()
    per_letter = [torch.logsumexp(logits_BV[:, list(ids)], dim=-1) for ids in letter_ids]
    letter_BK = torch.stack(per_letter, dim=-1)  # (B, K)
    letter_BK = letter_BK.masked_fill(~valid_BK, float("-inf"))
    logp_BK = torch.log_softmax(letter_BK, dim=-1)  # (B, K), -inf where not an option
    probs_BK = logp_BK.exp()
    plogp_BK = torch.where(valid_BK, probs_BK * logp_BK, torch.zeros_like(probs_BK))
    entropy_B = -plogp_BK.sum(-1)
    k_B = valid_BK.sum(-1).clamp(min=2).float()
    p_correct_B = probs_BK.gather(1, gold_B.long().view(-1, 1)).squeeze(1)
    return LetterStats(probs_BK, p_correct_B, entropy_B, entropy_B / torch.log(k_B))


def scoring_prefill(prefix: str, completion: str) -> str:
    """Assistant text up to and including `<answer>`: the model's own when it wrote one, else teacher-forced.

    >>> scoring_prefill("", "<think>red</think><answer>B</answer>")
    '<think>red</think><answer>'
    >>> scoring_prefill("<think>So B.", " hmm")
    '<think>So B. hmm</think><answer>'
    >>> scoring_prefill("", "B")
    'B<answer>'
    """
    full = prefix + completion
    i = full.find(ANSWER_OPEN)
    if i != -1:
        return full[: i + len(ANSWER_OPEN)]
    j = full.find(THINK_CLOSE)
    if j != -1:
        return full[: j + len(THINK_CLOSE)] + ANSWER_OPEN
    return full + (THINK_CLOSE + ANSWER_OPEN if THINK_OPEN in full else ANSWER_OPEN)


@torch.no_grad()
def next_token_logits(vlm: Any, prompts: Sequence[Any]) -> torch.Tensor:
    """Logits (B, V) of the token after each prompt (chat template + prefill), one forward through the core
    wrapper (per-family positions and masks; vision tokens masked out)."""
    device = next(vlm.model.parameters()).device
    enc = vlm.encode(list(prompts), device=device)
    b = enc["input_ids"].shape[0]
    # One dummy completion token: `completion_logits` returns the logits that predict it, i.e. the
    # distribution right after the prompt. Causal attention keeps the dummy from influencing them.
    ids_B1 = torch.full((b, 1), vlm.pad_token_id, dtype=torch.long, device=device)
    return vlm.completion_logits(enc, ids_B1, torch.ones_like(ids_B1))[:, 0]  # (B, V)


def stats_for(
    vlm: Any,
    prompts: Sequence[Any],
    letters: Sequence[Sequence[str]],
    golds: Sequence[str],
    letter_ids: dict[str, list[int]],
) -> list[dict[str, Any]]:
    """Letter probabilities, P(correct), entropy and H/ln K for a batch of scoring prompts."""
    union = sorted({x for row in letters for x in row})
    valid = torch.tensor([[x in row for x in union] for row in letters], dtype=torch.bool)
    gold = torch.tensor([union.index(g) for g in golds])
    logits = next_token_logits(vlm, prompts).cpu()
    st = letter_stats(logits, [letter_ids[x] for x in union], valid, gold)
    out = []
    for b, row in enumerate(letters):
        probs = {x: float(st.probs_BK[b, union.index(x)]) for x in row}
        out.append(
            {
                "letter_probs": probs,
                "p_correct": float(st.p_correct_B[b]),
                "entropy": float(st.entropy_B[b]),
                "entropy_norm": float(st.entropy_norm_B[b]),
            }
        )
    return out
