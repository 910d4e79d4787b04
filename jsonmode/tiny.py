"""Offline stand-ins: a tiny random Llama and a byte-level BPE trained in memory.

They exist so the whole pipeline (prompt -> automaton -> processor -> decode loop ->
validator) runs on a machine with no hub access: outputs are schema-valid but
meaningless, since the weights are random.
"""

from __future__ import annotations

from typing import Any

CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content']"
    " + '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def _training_corpus() -> list[str]:
    """JSON-ish text with unicode so the tiny vocabulary learns realistic merges."""
    rows = []
    for i in range(200):
        rows.append(
            f'{{"id": {i}, "name": "item {i}", "price": {i * 1.25}, "tags": ["a", "b"], "ok": true, '
            f'"note": null, "city": "Café ñ 日本語 🙂"}}\n'
        )
    rows.append('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>')
    return rows


def trained_bpe_tokenizer(vocab_size: int = 600) -> Any:
    """Byte-level BPE trained in memory with ChatML specials; needs no files or network."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>")
    fast.add_tokens(["<tool_call>", "</tool_call>"])  # non-special added tokens, as in Hermes
    fast.chat_template = CHATML_TEMPLATE
    return fast


def tiny_llama(tokenizer: Any, *, seed: int = 0, hidden: int = 64, layers: int = 2, extra_columns: int = 0) -> Any:
    """A randomly initialised ``LlamaForCausalLM`` sized for ``tokenizer`` (+ optional wider logits)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    vocab = len(tokenizer) + extra_columns
    eos = tokenizer.eos_token_id
    cfg = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(cfg)
    model.eval()
    model.generation_config.pad_token_id = cfg.pad_token_id
    return model
