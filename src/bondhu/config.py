"""Typed run configuration: one YAML file per run plus ``key=value`` overrides.

Every section is a pydantic model with ``extra="forbid"``, so a misspelt key fails at
load time with the file and the dotted field name, not halfway through training.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bondhu.errors import ConfigError

# Bondhu's default system prompt, the one place it lives (data.system_prompt overrides it per run).
# It asks for listening without a question in every reply, plain help when help is asked for,
# urgent care for danger and medical red flags, the user's own register, no assumptions, and
# honesty about being an AI rather than a professional. It is longer than the prompt it replaced,
# and every conversation pays for it in tokens (data/bondhu-empathy/DATASET.md says how many).
DEFAULT_SYSTEM_PROMPT = (
    "তুমি বন্ধু, একজন উষ্ণ বাংলাভাষী এআই বন্ধু। মানুষটি যেভাবে বলে (আপনি, তুমি বা তুই), সেভাবেই সহজ চলিত "
    "বাংলায় কথা বলো। মন দিয়ে শোনো, সব উত্তরে প্রশ্ন কোরো না। সাহায্য চাইলে সোজা কাজের কথা বলো। যা বলা হয়নি, "
    "তা ধরে নিয়ো না। বিপদ, শরীরের জরুরি লক্ষণ বা নিজের ক্ষতির কথায় এখনই সাহায্য নিতে বলো। তুমি এআই, "
    "চিকিৎসক বা কাউন্সেলর নও।"
)
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TinyModelSpec(_Section):
    """A small random-initialised Llama plus a BPE tokenizer trained on local text, for CPU runs."""

    vocab_size: int = Field(4096, ge=512)
    hidden_size: int = Field(128, ge=16)
    intermediate_size: int = Field(256, ge=16)
    num_hidden_layers: int = Field(2, ge=1)
    num_attention_heads: int = Field(4, ge=1)
    num_key_value_heads: int = Field(2, ge=1)
    max_position_embeddings: int = Field(4096, ge=128)
    tokenizer_corpus: list[str] = ["data/bondhu-empathy/train.jsonl"]
    # Plain-text language-model steps on the corpus before saving, so the "base" model
    # knows some Bengali and a LoRA fine-tune has something to adapt. 0 keeps it random.
    pretrain_epochs: float = Field(0.0, ge=0)
    seed: int = 0


class ModelConfig(_Section):
    name_or_path: str = "meta-llama/Llama-3.1-8B-Instruct"
    revision: str | None = None
    # When set, name_or_path is a local folder that is built from this spec if missing.
    tiny: TinyModelSpec | None = None
    # Unsloth sizes its RoPE and kernels from this; it is not a truncation length.
    max_seq_length: int = Field(2048, ge=64)
    attn_implementation: Literal["sdpa", "eager", "flash_attention_2"] | None = "sdpa"
    # Distinct from EOS (<|eot_id|>), or padding would teach the model never to stop.
    pad_token: str = "<|finetune_right_pad_id|>"
    trust_remote_code: bool = False


class DataConfig(_Section):
    train: str = "data/bondhu-empathy/train.jsonl"
    validation: str | None = "data/bondhu-empathy/validation.jsonl"
    test: str | None = "data/bondhu-empathy/test.jsonl"
    # Train on this many of the training split's conversations, evenly spaced through the file (the
    # same ones every run; the bundled file runs writer by writer, emotion by emotion, so they span
    # all of them). For demos and smoke runs; the rest are counted as skipped in the data report.
    train_subset: int | None = Field(None, ge=1)
    validation_subset: int | None = Field(None, ge=1)  # the same, for the validation split
    format: Literal["auto", "native", "messages", "sharegpt", "becc"] = "auto"
    hub_split: str = "train"
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    # None: the longest example sets the length; nothing is ever cut silently.
    max_length: int | None = Field(None, ge=16)
    overflow: Literal["error", "drop", "truncate_history"] = "error"
    min_bengali_ratio: float = Field(0.5, ge=0.0, le=1.0)
    non_bengali: Literal["flag", "drop"] = "flag"
    crisis_numbers: Literal["remove", "flag"] = "remove"
    # The BECC (Kaggle) corpus: put Question-Title before the question. Off, because in the
    # corpus's chit-chat rows the title is a keyword fragment and in its counselling rows it
    # often contradicts the question, so the model would learn from text the user never wrote.
    becc_title: bool = False
    strict: bool = False


class LoraSettings(_Section):
    r: int = Field(16, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_LINEAR))
    use_rslora: bool = False


class TrainingConfig(_Section):
    strategy: Literal["auto", "unsloth", "qlora", "lora"] = "auto"
    epochs: float = Field(1.0, gt=0)
    max_steps: int = -1
    per_device_batch_size: int = Field(2, ge=1)
    gradient_accumulation_steps: int = Field(4, ge=1)
    learning_rate: float = Field(2e-4, gt=0)
    lr_scheduler: Literal["linear", "cosine", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, ge=0)
    optimizer: str = "adamw_torch"
    precision: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    compute_dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    # auto: the fastest of no recompute / checkpointing that fits the card (bondhu.train.plan);
    # true or false force it. Checkpointing costs a third more compute per token, no recompute
    # keeps every layer's activations (about 4 MiB per token on the 8B shape).
    gradient_checkpointing: bool | Literal["auto"] = "auto"
    # The memory training may use, in GiB; None: the card's free memory (the process's RAM on CPU).
    memory_budget_gib: float | None = Field(None, gt=0)
    # padding_free: no pad tokens, one flat row per step; packing: rows filled to max_length;
    # padded: rows of similar length together, right-padded, causal attention with no mask
    # (bondhu.train.collate says why that is exact, and when it is faster).
    batching: Literal["padding_free", "packing", "padded"] = "padding_free"
    seed: int = 42
    logging_steps: int = Field(1, ge=1)
    eval_steps: int | None = Field(None, ge=1)
    save_steps: int = Field(50, ge=1)
    save_total_limit: int = Field(2, ge=1)
    num_processes: int = Field(1, ge=1)
    dataloader_workers: int = Field(0, ge=0)


class LoggingConfig(_Section):
    wandb: bool = False
    wandb_project: str = "bondhu"
    # auto: online when WANDB_API_KEY is set, otherwise offline so `wandb sync` works later.
    wandb_mode: Literal["auto", "online", "offline"] = "auto"
    tensorboard: bool = False


class OutputConfig(_Section):
    runs_dir: str = "runs"
    name: str = "bondhu"
    # False: refuse to train into a run directory that already holds a run (use --resume).
    overwrite: bool = False


class GenerationSettings(_Section):
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.7, ge=0.0, le=2.0)
    top_p: float = Field(0.9, gt=0.0, le=1.0)
    top_k: int = Field(50, ge=0)  # 0: no top-k cut (generate's own default is 50)
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0)
    do_sample: bool = True
    seed: int | None = 0

    @property
    def samples(self) -> bool:
        """Whether tokens are drawn at random; a temperature of 0 means greedy, as it does in generate."""
        return self.do_sample and self.temperature > 0


class EvaluationConfig(_Section):
    split: Literal["train", "validation", "test"] = "test"
    max_samples: int | None = Field(None, ge=1)
    batch_size: int = Field(8, ge=1)
    compare_base: bool = True
    # Greedy by default so two evaluations of one run agree.
    do_sample: bool = False
    max_new_tokens: int = Field(128, ge=1)
    seed: int = 0


class ChatConfig(_Section):
    backend: Literal["auto", "hf", "unsloth", "fast"] = "auto"
    context_tokens: int = Field(4096, ge=64)
    # The fast backend's merged weights. "int8": int8 with one scale per output channel (torchao
    # weight-only), so each token reads half the bytes of bf16 (8 GB for 8B instead of 16 GB),
    # at the cost of a small rounding of every weight. Needs torchao.
    fast_quantization: Literal["none", "int8"] = "none"
    helplines_file: str | None = None
    helpline_regions: list[str] = ["BD", "IN"]


class SafetyConfig(_Section):
    """The crisis detector (docs/safety.md): which classifier, and how far back a conversation is read."""

    # None: the classifier file bundled with Bondhu; a path: one built by `bondhu safety train`.
    classifier: str | None = None
    # User turns read together for conversation-level risk (the newest and the ones before it).
    window: int = Field(3, ge=1, le=20)
    # After a crisis, this many later turns keep the helplines visible and the model reminded.
    elevated_turns: int = Field(3, ge=0, le=50)
    # Replace model replies that give method details or encourage self-harm.
    check_output: bool = True


class UpstreamConfig(_Section):
    """The OpenAI-compatible engine that writes the replies when `bondhu serve` is a gateway
    (vLLM, llama.cpp's llama-server, Ollama, llama-cpp-python's server): docs/serving.md."""

    # The engine's OpenAI base URL; a bare http://host:port gets /v1, where all four serve the API.
    url: str
    # The name the engine serves the model under (vLLM's --served-model-name, llama-server's --alias).
    model: str = Field("bondhu", min_length=1)
    # The longest wait for the engine's next bytes, its first token's included: past it, 504.
    timeout_s: float = Field(120.0, gt=0)
    connect_timeout_s: float = Field(5.0, gt=0)
    # Replies in flight at the engine at once; more admitted requests (serve.queue_size) wait their turn.
    max_concurrency: int = Field(16, ge=1)
    # The name of an environment variable that holds the engine's key, never the key itself:
    # config files are copied into run directories and shown in logs.
    api_key_env: str | None = None

    @field_validator("url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        parts = urlsplit(url.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080/v1")
        if parts.username or parts.password:
            raise ValueError("must not carry credentials; name an environment variable in api_key_env instead")
        if parts.query or parts.fragment:
            raise ValueError("must be the engine's base URL, without a query or fragment")
        try:
            port = parts.port  # raises ValueError on a port that is not a number from 0 to 65535
        except ValueError:
            port = 0
        if port == 0:
            raise ValueError("has a port that is not a number from 1 to 65535")
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/") or "/v1", "", ""))

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        if name is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ValueError("must be the name of an environment variable (letters, digits and _), e.g. VLLM_API_KEY")
        return name


class ServeConfig(_Section):
    """`bondhu serve` (docs/serving.md)."""

    # Loopback by default: only this machine can reach the model until an address is chosen on purpose.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    api_key: str | None = None
    max_tokens_limit: int = Field(1024, ge=1)
    max_input_chars: int = Field(16000, ge=1)
    max_messages: int = Field(64, ge=1)
    queue_size: int = Field(32, ge=1)
    # A request still waiting for the model after this long gets 503 (code "queue_timeout").
    queue_timeout_s: float = Field(600.0, gt=0)
    # Web origins allowed to call the API from a browser (CORS); empty: none but the server's own page.
    cors_origins: list[str] = []
    model_id: str = "bondhu"
    # Set: the server is a safety gateway in front of this engine and loads no model of its own.
    upstream: UpstreamConfig | None = None

    @model_validator(mode="after")
    def _admits_what_it_sends(self) -> "ServeConfig":
        if self.upstream and self.upstream.max_concurrency > self.queue_size:
            raise ValueError(
                f"serve.upstream.max_concurrency ({self.upstream.max_concurrency}) is more than serve.queue_size "
                f"({self.queue_size}), the requests admitted at once; raise queue_size or lower max_concurrency"
            )
        return self

    @field_validator("api_key")
    @classmethod
    def _ascii_key(cls, key: str | None) -> str | None:
        # HTTP headers are read as Latin-1, so a key outside printable ASCII could never match.
        if key is not None and not (key and key.isascii() and key.isprintable() and " " not in key):
            raise ValueError("the API key must be printable ASCII without spaces (an HTTP header carries it)")
        return key


class BondhuConfig(_Section):
    """The whole run: every component reads its own section."""

    model: ModelConfig = ModelConfig()
    data: DataConfig = DataConfig()
    lora: LoraSettings = LoraSettings()
    training: TrainingConfig = TrainingConfig()
    logging: LoggingConfig = LoggingConfig()
    output: OutputConfig = OutputConfig()
    generation: GenerationSettings = GenerationSettings()
    evaluation: EvaluationConfig = EvaluationConfig()
    chat: ChatConfig = ChatConfig()
    safety: SafetyConfig = SafetyConfig()
    serve: ServeConfig = ServeConfig()

    @model_validator(mode="after")
    def _check_heads(self) -> "BondhuConfig":
        t = self.model.tiny
        if t and t.hidden_size % t.num_attention_heads:
            raise ValueError("model.tiny.hidden_size must be divisible by num_attention_heads")
        if t and t.num_attention_heads % t.num_key_value_heads:
            raise ValueError("model.tiny.num_attention_heads must be divisible by num_key_value_heads")
        return self

    @property
    def run_dir(self) -> Path:
        return Path(self.output.runs_dir) / self.output.name


def _set_dotted(tree: dict, dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    node = tree
    for key in keys[:-1]:
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {dotted}: {key} is not a section")
        node = child
    node[keys[-1]] = value


def parse_overrides(overrides: list[str] | None) -> dict:
    """Turn ``["training.epochs=2", "lora.r=8"]`` into a nested dict; values are parsed as YAML."""
    tree: dict = {}
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value, e.g. training.epochs=2")
        key, raw = item.split("=", 1)
        _set_dotted(tree, key.strip(), yaml.safe_load(raw) if raw.strip() else None)
    return tree


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _describe(err: ValidationError, source: str) -> str:
    first = err.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "(root)"
    msg = first["msg"]
    if first["type"] == "extra_forbidden":
        msg = "unknown field"
    extra = f" (and {err.error_count() - 1} more)" if err.error_count() > 1 else ""
    got = first.get("input")
    shown = f", got {got!r}" if got is not None and not isinstance(got, dict) else ""
    return f"{source}: {field}: {msg}{shown}{extra}"


def config_from_dict(data: dict, source: str = "config") -> BondhuConfig:
    """Validate a plain dict into a BondhuConfig, raising ConfigError with the field path."""
    try:
        return BondhuConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_describe(err, source)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> BondhuConfig:
    """Load a YAML config (or the defaults when ``path`` is None) and apply ``key=value`` overrides."""
    data: dict = {}
    source = "defaults"
    if path is not None:
        source = str(path)
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{source}: config file not found")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            line = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{source}{line}: not valid YAML ({getattr(err, 'problem', err)})") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{source}: the top level must be a mapping of sections")
        data = loaded
    data = _merge(data, parse_overrides(overrides))
    return config_from_dict(data, source)


def dump_config(cfg: BondhuConfig, path: str | Path) -> None:
    """Write the resolved config as YAML, so a run directory records exactly what ran."""
    Path(path).write_text(yaml.safe_dump(cfg.model_dump(mode="json"), allow_unicode=True, sort_keys=False), "utf-8")
