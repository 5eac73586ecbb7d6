"""Tiny, randomly initialised VLMs of each supported family, built entirely offline.

Each builder trains a byte-level BPE tokenizer on a small corpus, attaches the family's chat
template and a real processor, and saves a normal Hugging Face folder that
`AutoModelForImageTextToText.from_pretrained` and `AutoProcessor.from_pretrained` load.
Tests and the embedded demo model use these; nothing here touches the network.

Pitfalls handled here (transformers 5.x):
1. Qwen2/2.5-VL `mrope_section` must sum to head_dim // 2 (the default assumes head_dim 128).
2. Qwen-VL processors need a video processor (torchvision backend) even for images.
3. A small corpus gives a small BPE vocab, so `vocab_size` is set from the trained tokenizer.
4. Mllama's `max_num_tiles` must be 4 with the default aspect-ratio table.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

TinyFamily = Literal["qwen2_5_vl", "qwen2_vl", "mllama", "llava"]
TINY_FAMILIES: tuple[TinyFamily, ...] = ("qwen2_5_vl", "qwen2_vl", "mllama", "llava")

_QWEN_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                  "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
_QWEN_TEMPLATE = (
    "{% for message in messages %}{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}"
    "<|vision_start|><|image_pad|><|vision_end|>{% elif content['type'] == 'text' %}{{ content['text'] }}"
    "{% endif %}{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_MLLAMA_SPECIALS = ["<|begin_of_text|>", "<|end_of_text|>", "<|finetune_right_pad_id|>", "<|start_header_id|>",
                    "<|end_header_id|>", "<|eot_id|>", "<|python_tag|>", "<|image|>"]
_MLLAMA_TEMPLATE = (
    "{{ '<|begin_of_text|>' }}{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<|image|>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|eot_id|>' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
_LLAVA_SPECIALS = ["<s>", "</s>", "<pad>", "<image>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>"]
_LLAVA_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' }}"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for content in message['content'] %}{% if content['type'] == 'image' %}{{ '<image>' }}"
    "{% elif content['type'] == 'text' %}{{ content['text'] }}{% endif %}{% endfor %}{% endif %}"
    "{{ '<|end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)

_BASE_CORPUS = (
    "What color is the circle? red green blue yellow square circle triangle shape shapes left right above "
    "below middle top bottom How many are there? 0 1 2 3 4 5 6 7 8 9 yes no Is there a the of in on "
    "<description> </description> <think> </think> <answer> </answer> \\boxed{red} \\boxed{3} A B C D "
    "Describe the image. a red circle on the left, a blue square in the middle, a green triangle on the right."
)


@dataclass(frozen=True)
class TinySpec:
    """Size knobs of a tiny model (text decoder + vision tower)."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    vision_hidden: int = 32
    vision_depth: int = 2
    vocab_size: int = 1024
    image_size: int = 56
    tie_embeddings: bool = False
    phrases: tuple[str, ...] = ()
    """Fixed strings (e.g. long instruction prompts) added as single tokens, so a tiny model's
    prompts stay short; everything else is ordinary byte-level BPE."""


def train_tokenizer(corpus: Iterable[str], specials: list[str], *, eos: str, pad: str, bos: str | None,
                    chat_template: str, vocab_size: int = 1024, phrases: Iterable[str] = ()):
    """Train a byte-level BPE tokenizer on `corpus` (any text still encodes, byte by byte)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(corpus) + [_BASE_CORPUS], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=eos, pad_token=pad, bos_token=bos,
                                   padding_side="left")
    fast.chat_template = chat_template
    phrases = [p for p in dict.fromkeys(phrases) if p]
    if phrases:
        from tokenizers import AddedToken

        fast.add_tokens([AddedToken(p, normalized=False, special=False) for p in phrases])
    return fast


def _qwen(family: TinyFamily, spec: TinySpec, corpus: Iterable[str]):
    import transformers as tf

    tok = train_tokenizer(corpus, _QWEN_SPECIALS, eos="<|im_end|>", pad="<|endoftext|>", bos=None,
                          chat_template=_QWEN_TEMPLATE, vocab_size=spec.vocab_size,
                          phrases=spec.phrases)
    ids = {t: tok.convert_tokens_to_ids(t) for t in _QWEN_SPECIALS}
    half = spec.hidden // spec.heads // 2  # mrope_section must sum to head_dim // 2
    sec = [half // 4, half // 4 + half // 8]
    sec.append(half - sum(sec))
    text = dict(vocab_size=len(tok), hidden_size=spec.hidden, intermediate_size=2 * spec.hidden,
                num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                num_key_value_heads=spec.kv_heads, max_position_embeddings=4096,
                rope_parameters={"rope_type": "default", "rope_theta": 1e4, "mrope_section": sec},
                tie_word_embeddings=spec.tie_embeddings,
                bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"])
    special = dict(image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                   vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    vision = dict(depth=spec.vision_depth, embed_dim=spec.vision_hidden, hidden_size=spec.vision_hidden,
                  mlp_ratio=2, intermediate_size=2 * spec.vision_hidden, num_heads=2, out_hidden_size=spec.hidden,
                  patch_size=14, spatial_merge_size=2, temporal_patch_size=2)
    pixels = spec.image_size * spec.image_size
    if family == "qwen2_5_vl":
        vision.update(window_size=56, fullatt_block_indexes=list(range(spec.vision_depth)))
        cfg = tf.Qwen2_5_VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=spec.tie_embeddings,
                                  **special)
        model = tf.Qwen2_5_VLForConditionalGeneration(cfg)
        proc_cls = tf.Qwen2_5_VLProcessor
    else:
        vision.update(hidden_size=spec.hidden)  # Qwen2-VL's merger projects to `hidden_size`
        cfg = tf.Qwen2VLConfig(text_config=text, vision_config=vision, tie_word_embeddings=spec.tie_embeddings,
                               **special)
        model = tf.Qwen2VLForConditionalGeneration(cfg)
        proc_cls = tf.Qwen2VLProcessor
    # min_pixels=56² keeps at least 4 image tokens; max_pixels bounds the sequence on CPU.
    max_pixels = max(pixels, 112 * 112)
    proc = proc_cls(image_processor=tf.Qwen2VLImageProcessor(min_pixels=56 * 56, max_pixels=max_pixels),
                    video_processor=tf.Qwen2VLVideoProcessor(min_pixels=56 * 56, max_pixels=max_pixels),
                    tokenizer=tok, chat_template=_QWEN_TEMPLATE)
    return model, proc, tok, ids["<|im_end|>"], ids["<|endoftext|>"]


def _mllama(spec: TinySpec, corpus: Iterable[str]):
    import transformers as tf

    tok = train_tokenizer(corpus, _MLLAMA_SPECIALS, eos="<|eot_id|>", pad="<|finetune_right_pad_id|>",
                          bos="<|begin_of_text|>", chat_template=_MLLAMA_TEMPLATE, vocab_size=spec.vocab_size)
    ids = {t: tok.convert_tokens_to_ids(t) for t in _MLLAMA_SPECIALS}
    vh = spec.vision_hidden
    vis = dict(hidden_size=vh, num_hidden_layers=spec.vision_depth, num_global_layers=1, attention_heads=2,
               intermediate_size=2 * vh, intermediate_layers_indices=[0], vision_output_dim=vh * 2,
               image_size=28, patch_size=14, max_num_tiles=4)
    txt = dict(vocab_size=len(tok), hidden_size=spec.hidden, num_hidden_layers=max(spec.layers, 2) + 1,
               num_attention_heads=spec.heads, num_key_value_heads=spec.kv_heads, intermediate_size=2 * spec.hidden,
               cross_attention_layers=[1], bos_token_id=ids["<|begin_of_text|>"], eos_token_id=ids["<|eot_id|>"],
               pad_token_id=ids["<|finetune_right_pad_id|>"], tie_word_embeddings=spec.tie_embeddings)
    cfg = tf.MllamaConfig(vision_config=vis, text_config=txt, image_token_index=ids["<|image|>"])
    model = tf.MllamaForConditionalGeneration(cfg)
    # Cross-attention gates start at 0 (tanh(0) = 0), which would make a random tiny Mllama ignore its
    # images entirely; open them so image-dependent behaviour is testable.
    for name, param in model.named_parameters():
        if "cross_attn" in name and name.endswith("gate"):
            param.data.fill_(1.0)
    proc = tf.MllamaProcessor(image_processor=tf.MllamaImageProcessor(size={"height": 28, "width": 28},
                                                                       max_image_tiles=4),
                              tokenizer=tok, chat_template=_MLLAMA_TEMPLATE)
    return model, proc, tok, ids["<|eot_id|>"], ids["<|finetune_right_pad_id|>"]


def _llava(spec: TinySpec, corpus: Iterable[str]):
    import transformers as tf

    tok = train_tokenizer(corpus, _LLAVA_SPECIALS, eos="<|end|>", pad="<pad>", bos=None,
                          chat_template=_LLAVA_TEMPLATE, vocab_size=spec.vocab_size)
    ids = {t: tok.convert_tokens_to_ids(t) for t in _LLAVA_SPECIALS}
    vh = spec.vision_hidden
    cfg = tf.LlavaConfig(
        vision_config=tf.CLIPVisionConfig(hidden_size=vh, intermediate_size=2 * vh, num_hidden_layers=spec.vision_depth,
                                          num_attention_heads=2, image_size=28, patch_size=14),
        text_config=tf.LlamaConfig(vocab_size=len(tok), hidden_size=spec.hidden, intermediate_size=2 * spec.hidden,
                                   num_hidden_layers=spec.layers, num_attention_heads=spec.heads,
                                   num_key_value_heads=spec.kv_heads, eos_token_id=ids["<|end|>"],
                                   pad_token_id=ids["<pad>"], bos_token_id=ids["<s>"],
                                   tie_word_embeddings=spec.tie_embeddings),
        image_token_index=ids["<image>"], vision_feature_layer=-1, vision_feature_select_strategy="default")
    model = tf.LlavaForConditionalGeneration(cfg)
    proc = tf.LlavaProcessor(
        image_processor=tf.CLIPImageProcessor(size={"shortest_edge": 28}, crop_size={"height": 28, "width": 28}),
        tokenizer=tok, patch_size=14, vision_feature_select_strategy="default", num_additional_image_tokens=1,
        chat_template=_LLAVA_TEMPLATE)
    return model, proc, tok, ids["<|end|>"], ids["<pad>"]


def build_tiny(family: TinyFamily, out_dir: str | Path | None = None, *, spec: TinySpec | None = None,
               corpus: Iterable[str] = (), seed: int = 0):
    """Build a tiny random VLM of `family`; save it to `out_dir` when given.

    Returns:
        (model, processor) — the model in fp32 eval mode.
    """
    import torch
    from transformers import GenerationConfig

    spec = spec or TinySpec()
    torch.manual_seed(seed)
    if family in ("qwen2_5_vl", "qwen2_vl"):
        model, proc, tok, eos, pad = _qwen(family, spec, corpus)
    elif family == "mllama":
        model, proc, tok, eos, pad = _mllama(spec, corpus)
    elif family == "llava":
        model, proc, tok, eos, pad = _llava(spec, corpus)
    else:
        raise ValueError(f"unknown tiny family {family!r}; choose one of {', '.join(TINY_FAMILIES)}")
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=pad, bos_token_id=tok.bos_token_id)
    model.eval()
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out)
        proc.save_pretrained(out)
    return model, proc
