"""Known-answer tests for bondhu.evaluate.metrics (hand-computed Bengali cases)."""

import math

import pytest
import torch
from rouge_score import rouge_scorer

from bondhu.data.normalize import normalize_bengali
from bondhu.evaluate.metrics import (
    BLEU_TOKENIZATION,
    BengaliRougeTokenizer,
    bengali_script_ratio,
    bleu,
    chrf_pp,
    distinct_n,
    length_stats,
    perplexity,
    rouge,
    stem_bengali,
    tokenize_bengali,
    word_tokens,
)

ZWJ = "\u200d"
YA_NUKTA_DECOMPOSED = "\u09af\u09bc"  # য + ়
YA_NUKTA_SINGLE = "\u09df"  # য়


# --- tokenization -----------------------------------------------------------


def test_danda_is_split_from_word():
    assert tokenize_bengali("আমি ভালো আছি।") == ["আমি", "ভালো", "আছি", "।"]


def test_conjuncts_and_zwj_stay_whole():
    rab = "র" + ZWJ + "্যাব"
    assert tokenize_bengali("ক্ষমা") == ["ক্ষমা"]
    assert tokenize_bengali(f"{rab}।") == [rab, "।"]
    # hasanta, vowel signs and nukta are marks, not separators
    assert tokenize_bengali("বিদ্যুৎ আ" + YA_NUKTA_DECOMPOSED + "না") == [
        "বিদ্যুৎ",
        normalize_bengali("আ" + YA_NUKTA_DECOMPOSED + "না"),
    ]


def test_quotes_brackets_and_marks_split():
    text = "সে বলল, “কেমন আছ?” ‘ভালো’ (হ্যাঁ) \"ঠিক\" 'না'! ॥"
    assert tokenize_bengali(text) == [
        "সে", "বলল", ",", "“", "কেমন", "আছ", "?", "”", "‘", "ভালো", "’",
        "(", "হ্যাঁ", ")", '"', "ঠিক", '"', "'", "না", "'", "!", "॥",
    ]  # fmt: skip


def test_bengali_digits_are_words():
    assert tokenize_bengali("১২৩ টাকা।") == ["১২৩", "টাকা", "।"]


def test_tokenize_normalizes_nukta():
    # Both spellings of য় must become the same token, whichever form normalize picks.
    decomposed = tokenize_bengali("আ" + YA_NUKTA_DECOMPOSED + "না")
    single = tokenize_bengali("আ" + YA_NUKTA_SINGLE + "না")
    assert decomposed == single == [normalize_bengali("আ" + YA_NUKTA_SINGLE + "না")]


def test_word_tokens_drop_punctuation_and_optionally_lowercase():
    assert word_tokens("আমি OK আছি। “হ্যাঁ”?") == ["আমি", "OK", "আছি", "হ্যাঁ"]
    assert word_tokens("আমি OK", lowercase=True) == ["আমি", "ok"]
    assert word_tokens("।?!") == []


# --- BLEU ---------------------------------------------------------------------


def test_bleu_identical_is_100_and_disjoint_is_0():
    hyp = ["আমি আজ খুব খুশি।"]
    assert bleu(hyp, hyp)["score"] == pytest.approx(100.0)
    assert bleu(["আমি ভালো আছি"], ["তুমি কোথায় যাচ্ছ"])["score"] == pytest.approx(0.0)


def test_bleu_danda_is_its_own_token():
    assert bleu(["আমি ভালো আছি।"], ["আমি ভালো আছি ।"])["score"] == pytest.approx(100.0)


def test_bleu_normalization_equivalence():
    hyp = "আমি আ" + YA_NUKTA_DECOMPOSED + "নায় দেখি।"
    ref = "আমি আ" + YA_NUKTA_SINGLE + "নায় দেখি।"
    assert hyp != ref
    assert bleu([hyp], [ref])["score"] == pytest.approx(100.0)


def test_bleu_signature_and_tokenization():
    result = bleu(["আমি"], ["আমি"])
    assert "tok:none" in result["signature"]
    assert result["tokenization"] == BLEU_TOKENIZATION


@pytest.mark.parametrize("fn", [bleu, chrf_pp, rouge])
def test_pair_metrics_reject_bad_input(fn):
    with pytest.raises(ValueError):
        fn(["আমি"], ["আমি", "তুমি"])
    with pytest.raises(ValueError):
        fn([], [])
    with pytest.raises(ValueError):
        fn("আমি", "আমি")


# --- chrF++ -------------------------------------------------------------------


def test_chrf_identical_and_disjoint():
    same = chrf_pp(["আমি ভালো আছি।"], ["আমি ভালো আছি।"])
    assert same["score"] == pytest.approx(100.0)
    assert "nw:2" in same["signature"]  # word bigrams on: chrF++, not plain chrF
    assert chrf_pp(["আমি ভালো"], ["সে খুশি"])["score"] < 10


def test_chrf_normalization_equivalence():
    hyp = "আ" + YA_NUKTA_DECOMPOSED + "না"
    assert chrf_pp([hyp], ["আ" + YA_NUKTA_SINGLE + "না"])["score"] == pytest.approx(100.0)


# --- ROUGE --------------------------------------------------------------------


def test_plain_rouge_score_zeroes_bengali():
    # Regression guard for why this module exists: the default tokenizer keeps only
    # [a-z0-9], so identical Bengali texts get no tokens and score 0.
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    scores = scorer.score("আমি ভালো আছি", "আমি ভালো আছি")
    assert scores["rouge1"].fmeasure == 0.0
    assert scores["rougeL"].fmeasure == 0.0


def test_rouge_identical_is_one():
    text = ["আমি আজ খুব খুশি। তুমি কেমন আছ?"]
    assert rouge(text, text) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_rouge_disjoint_is_zero():
    assert rouge(["আমি ভালো আছি"], ["তুমি কোথায় যাচ্ছ"]) == {
        "rouge1": 0.0,
        "rouge2": 0.0,
        "rougeL": 0.0,
    }


def test_rouge_partial_overlap_hand_computed():
    # hyp: আমি আজ খুব খুশি    ref: আমি আজ একটু খুশি   (4 words each)
    # rouge1: shared unigrams {আমি, আজ, খুশি} = 3 -> P = 3/4, R = 3/4, F1 = 0.75
    # rouge2: hyp bigrams {আমি আজ, আজ খুব, খুব খুশি}, ref {আমি আজ, আজ একটু, একটু খুশি}
    #         shared = 1 -> P = 1/3, R = 1/3, F1 = 1/3
    # rougeL: LCS = আমি আজ খুশি (3) -> P = 3/4, R = 3/4, F1 = 0.75
    scores = rouge(["আমি আজ খুব খুশি"], ["আমি আজ একটু খুশি"])
    assert scores["rouge1"] == pytest.approx(0.75)
    assert scores["rouge2"] == pytest.approx(1 / 3)
    assert scores["rougeL"] == pytest.approx(0.75)


def test_rouge_averages_over_pairs():
    # pair 1 identical (1.0), pair 2 the hand-computed case (0.75) -> mean 0.875
    scores = rouge(["আমি ভালো", "আমি আজ খুব খুশি"], ["আমি ভালো", "আমি আজ একটু খুশি"])
    assert scores["rouge1"] == pytest.approx(0.875)


def test_rouge_normalization_equivalence():
    hyp = "আমি আ" + YA_NUKTA_DECOMPOSED + "না দেখি"
    ref = "আমি আ" + YA_NUKTA_SINGLE + "না দেখি"
    assert rouge([hyp], [ref]) == {"rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_stemmer_rules():
    assert stem_bengali("বইগুলো") == "বই"
    assert stem_bengali("ছাত্রদের") == "ছাত্র"
    assert stem_bengali("মানুষেরা") == "মানুষ"
    assert stem_bengali("আমাকে") == "আমা"
    assert stem_bengali("বাড়িতে") == "বাড়ি"
    assert stem_bengali("বাবার") == "বাবা"
    assert stem_bengali("কে") == "কে"  # nothing would remain
    assert stem_bengali("ওর") == "ওর"  # one-character stem is too short
    assert stem_bengali("hello") == "hello"


def test_rouge_stem_matches_inflections():
    # বাড়িতে / বাড়ি differ only by the locative suffix
    assert rouge(["আমি বাড়িতে"], ["আমি বাড়ি"])["rouge1"] == pytest.approx(0.5)
    assert rouge(["আমি বাড়িতে"], ["আমি বাড়ি"], stem=True)["rouge1"] == pytest.approx(1.0)


def test_rouge_tokenizer_object():
    tok = BengaliRougeTokenizer()
    assert tok.tokenize("আমি OK আছি।") == ["আমি", "ok", "আছি"]


# --- distinct-n, lengths, script ratio -----------------------------------------


def test_distinct_n_hand_computed():
    # unigrams: আমি, আমি, তুমি -> 2 unique / 3; bigrams: (আমি আমি), (আমি তুমি) -> 2/2
    assert distinct_n(["আমি আমি তুমি"], 1) == pytest.approx(2 / 3)
    assert distinct_n(["আমি আমি তুমি"], 2) == pytest.approx(1.0)


def test_distinct_n_pools_responses_without_crossing():
    # unigrams: আমি ভালো | আমি ভালো -> 2 unique / 4; bigrams: 1 unique / 2
    # (no "ভালো আমি" bigram across the response boundary)
    assert distinct_n(["আমি ভালো।", "আমি ভালো"], 1) == pytest.approx(0.5)
    assert distinct_n(["আমি ভালো।", "আমি ভালো"], 2) == pytest.approx(0.5)


def test_distinct_n_empty():
    assert distinct_n([], 1) == 0.0
    assert distinct_n(["আমি"], 2) == 0.0


def test_length_stats_words_and_tokens():
    class CharTokenizer:
        def __call__(self, text, add_special_tokens=True):
            assert add_special_tokens is False
            return {"input_ids": list(range(len(text)))}

    texts = ["আমি ভালো আছি।", "হ্যাঁ"]  # 3 words, 1 word
    assert length_stats(texts) == {"mean_words": 2.0}
    stats = length_stats(texts, tokenizer=CharTokenizer())
    assert stats["mean_words"] == 2.0
    assert stats["mean_tokens"] == pytest.approx((len(texts[0]) + len(texts[1])) / 2)


def test_bengali_script_ratio():
    assert bengali_script_ratio(["আমি ভালো আছি।"]) == 1.0
    assert bengali_script_ratio(["I am fine."]) == 0.0
    # "আমি ok": letters আ ম ি (3 Bengali, the vowel sign counts as a mark) + o k
    # -> 3/5 = 0.6; averaged with a pure Bengali response -> (0.6 + 1.0) / 2 = 0.8
    assert bengali_script_ratio(["আমি ok"]) == pytest.approx(0.6)
    assert bengali_script_ratio(["আমি ok", "আমি"]) == pytest.approx(0.8)
    assert bengali_script_ratio([]) == 0.0


# --- perplexity -----------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )
    model = LlamaForCausalLM(config)
    model.eval()
    return model


@pytest.fixture(scope="module")
def examples():
    # Different lengths so batching forces right padding; -100 masks the "prompt".
    return [
        {"input_ids": [1, 5, 9, 13, 17, 21, 25], "labels": [-100, -100, -100, 13, 17, 21, 25]},
        {"input_ids": [1, 7, 3, 2], "labels": [-100, -100, 3, 2]},
        {"input_ids": [1, 40, 41, 42, 43, 44, 45, 46, 47, 48],
         "labels": [-100, 40, -100, 42, 43, -100, 45, 46, 47, 48]},
        {"input_ids": [1, 60, 61], "labels": [-100, -100, 61]},
    ]  # fmt: skip


def _reference_nll(model, examples):
    # HF's loss is the mean over one example's scored (shifted) tokens, so weight it
    # by that example's count to get the corpus-level token-weighted mean.
    total, count = 0.0, 0
    with torch.no_grad():
        for ex in examples:
            n = sum(1 for lab in ex["labels"][1:] if lab != -100)
            out = model(input_ids=torch.tensor([ex["input_ids"]]), labels=torch.tensor([ex["labels"]]))
            total += out.loss.item() * n
            count += n
    return total / count, count


@pytest.mark.parametrize("batch_size", [1, 3])
def test_perplexity_matches_model_loss(tiny_llama, examples, batch_size):
    mean_nll, count = _reference_nll(tiny_llama, examples)
    result = perplexity(tiny_llama, examples, batch_size=batch_size)
    assert result["tokens"] == count == 4 + 2 + 7 + 1
    assert result["mean_nll"] == pytest.approx(mean_nll, abs=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(mean_nll), rel=1e-5)


def test_perplexity_independent_of_padding(tiny_llama, examples):
    one = perplexity(tiny_llama, examples, batch_size=1)  # no padding at all
    padded = perplexity(tiny_llama, examples, batch_size=4, pad_token_id=0)
    other_pad = perplexity(tiny_llama, examples, batch_size=4, pad_token_id=63)
    assert padded["mean_nll"] == pytest.approx(one["mean_nll"], abs=1e-5)
    assert other_pad["mean_nll"] == pytest.approx(one["mean_nll"], abs=1e-5)


def test_perplexity_restores_training_mode(tiny_llama, examples):
    tiny_llama.train()
    try:
        perplexity(tiny_llama, examples)
        assert tiny_llama.training
    finally:
        tiny_llama.eval()


def test_perplexity_requires_scored_tokens(tiny_llama):
    with pytest.raises(ValueError):
        perplexity(tiny_llama, [{"input_ids": [1, 2, 3], "labels": [-100, -100, -100]}])
    with pytest.raises(ValueError):
        perplexity(tiny_llama, [])
    with pytest.raises(ValueError):
        perplexity(tiny_llama, [{"input_ids": [1, 2], "labels": [-100]}])
