"""ReasoningDataModule, tiny: cached hearing and reply codes, speech-apart batches, and batches the LM trains on."""
import json
import math
import random
import re
from collections import Counter
from pathlib import Path

import pytest
import torch

from s2s import audio
from s2s.asr.recognizer import CTCRecognizer
from s2s.codecs.base import Codec
from s2s.codecs.tiny.codec import save_net
from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
from s2s.data.manifest import read_manifest, write_manifest
from s2s.data.problems import generate_problem
from s2s.hearing.ctc import CTCHearing
from s2s.lm.batching import reply_opening, tokenize, word_token_counts
from s2s.lm.data import ReasoningDataModule, ReasoningDataset, SpeechApartSampler, collate, heard_questions, reply_codes
from s2s.lm.model import SpeechReasoningLM
from s2s.lm.module import SpeechReasoningModule
from s2s.lm.text_tokenizer import load_text_tokenizer, train_text_tokenizer

K, C = 2, 16  # the small codec's codebooks
ROWS = 6
TINY_LLAMA = {"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
              "intermediate_size": 64, "max_position_embeddings": 1024}
TINY_ASR = {"dim": 24, "layers": 1, "heads": 2, "ff_mult": 2, "conv_kernel": 3, "subsample_channels": 8}


def sound(seconds: float, hz: float, seed: int) -> torch.Tensor:
    n = round(seconds * 16000)
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.sin(2 * math.pi * hz * torch.arange(n) / 16000) + 0.05 * torch.randn(n, generator=g)


def write_corpus(folder: Path) -> Path:
    """ROWS spoken problems, questions of different lengths; the last two rows have no reply audio."""
    rng, rows, replies = random.Random(0), [], set()
    while len(rows) < ROWS:
        problem = generate_problem(rng)
        if problem.reply in replies:
            continue
        replies.add(problem.reply)
        i = len(rows)
        row = {"id": f"p{i}", "family": problem.family, "question": problem.question,
               "question_written": problem.question_written, "thought": problem.thought, "answer": problem.answer,
               "reply": problem.reply, "question_audio": f"wavs/q{i}.wav"}
        audio.save(folder / row["question_audio"], sound(0.3 + 0.1 * ((i * 5) % ROWS), 200 + 150 * i, i)[None], 16000)
        if i < ROWS - 2:
            row["reply_audio"] = f"wavs/r{i}.wav"
            audio.save(folder / row["reply_audio"], sound(0.2 + 0.05 * i, 500 + 50 * i, 100 + i)[None], 16000)
        rows.append(row)
    manifest = folder / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return manifest


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, str]:
    """The corpus, the LM's tokenizer (trained on it), a hearing model that spells it, and a small codec."""
    root = tmp_path_factory.mktemp("corpus")
    manifest = write_corpus(root / "train")
    tokenizer = root / "tokenizer"
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(tokenizer)
    torch.manual_seed(0)
    hearing = CTCRecognizer(labels=f"tokenizer:{tokenizer}", **TINY_ASR).save_pretrained(root / "hearing")
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=K,
                                       codebook_size=C, decoder_dim=16, decoder_layers=1))
    codec = save_net(net.eval(), root / "codec")
    return {"manifest": str(manifest), "tokenizer": str(tokenizer), "hearing": str(hearing), "codec": str(codec)}


def datamodule(folders, **options) -> ReasoningDataModule:
    options = {"hearing": folders["hearing"], "codec": folders["codec"], "num_codebooks": K, "text_examples": 20,
               "audio_repeats": 2, "speech_probability": 0.5, "batch_size": 4, "speech_batch_size": 2, **options}
    dm = ReasoningDataModule(folders["manifest"], **options)
    dm.setup("fit")
    return dm


@pytest.fixture(scope="module")
def dm(folders) -> ReasoningDataModule:
    return datamodule(folders)


# ---------------------------------------------------------------------- caches
def test_caches_are_written_beside_the_manifest_and_reused(folders, dm, monkeypatch):
    folder = Path(folders["manifest"]).parent
    heard_files, code_files = list((folder / "heard").glob("*.pt")), list((folder / "reply_audio-codes").glob("*.pt"))
    assert len(heard_files) == 1 and len(code_files) == 1
    assert not list(folder.glob("*/*.tmp"))
    data = dm.train_set
    assert len(data.heard) == ROWS and all(len(q) >= 1 for q in data.heard)
    assert all(q.token_ids.dtype == torch.int16 and q.probs.dtype == q.hidden.dtype == torch.float16
               for q in data.heard)
    assert all(q.hidden.shape[1] == 24 for q in data.heard)
    replies = [row["reply"] for row in data.rows]
    assert sorted(data.speech) == sorted(replies[: ROWS - 2])  # rows with reply audio only
    for i, reply in enumerate(replies[: ROWS - 2]):
        frames = math.ceil(round((0.2 + 0.05 * i) * 16000) / 320)  # 20 ms frames, the last one padded
        assert data.speech[reply].shape == (K, frames) and data.speech[reply].dtype == torch.int16

    def recompute(*args, **kwargs):
        raise AssertionError("recomputed instead of reading the cache")

    monkeypatch.setattr(CTCHearing, "forward", recompute)
    monkeypatch.setattr(Codec, "encode", recompute)
    again = datamodule(folders).train_set
    assert all(torch.equal(a.token_ids, b.token_ids) and torch.equal(a.hidden, b.hidden)
               for a, b in zip(again.heard, data.heard))
    assert data.speech.keys() == again.speech.keys()
    assert all(torch.equal(data.speech[k], again.speech[k]) for k in data.speech)
    # Another manifest (here: one more line) is another cache entry, so it is computed again.
    manifest = Path(folders["manifest"])
    changed = manifest.parent / "changed.jsonl"
    changed.write_text(manifest.read_text() + manifest.read_text().splitlines()[0] + "\n")
    with pytest.raises(AssertionError, match="recomputed"):
        heard_questions(changed, folders["hearing"])
    # The same audio with other thoughts (`s2s data rethink`) reads the same caches: nothing is heard again.
    rethought = manifest.parent / "rethought.jsonl"
    write_manifest(rethought, [dict(row, thought="Thought again.") for row in read_manifest(manifest)])
    assert [q.token_ids.tolist() for q in heard_questions(rethought, folders["hearing"])] == \
        [q.token_ids.tolist() for q in data.heard]
    assert reply_codes(rethought, folders["codec"], K).keys() == data.speech.keys()


def test_heard_questions_keep_manifest_order(folders, tmp_path):
    """Questions are heard sorted by length; each must come back to its own row."""
    manifest = Path(folders["manifest"])
    (tmp_path / "wavs").symlink_to(manifest.parent / "wavs")
    copy = tmp_path / "manifest.jsonl"
    copy.write_text(manifest.read_text())
    heard = heard_questions(copy, folders["hearing"], batch_size=1)  # one at a time: no padding
    hearing = CTCHearing(CTCRecognizer.from_pretrained(folders["hearing"]))
    rows = read_manifest(copy)
    lengths = [audio.load(tmp_path / row["question_audio"])[0].shape[-1] for row in rows]
    assert sorted(lengths) != lengths  # sorting by length reorders them
    for row, question in zip(rows, heard):
        alone = hearing(audio.load(tmp_path / row["question_audio"], 16000)[0])[0]
        assert torch.equal(question.token_ids.long(), alone.token_ids)
        assert torch.allclose(question.hidden.float(), alone.hidden, atol=1e-2)
        assert torch.allclose(question.probs.float(), alone.probs, atol=1e-3)


def test_a_hearing_that_writes_text_is_cut_into_the_lm_tokens(folders, tmp_path):
    """The written-characters hearing needs the LM's tokenizer; another tokenizer is another cache entry."""
    manifest = Path(folders["manifest"])
    (tmp_path / "wavs").symlink_to(manifest.parent / "wavs")
    copy = tmp_path / "manifest.jsonl"
    copy.write_text(manifest.read_text())
    torch.manual_seed(1)
    written = str(CTCRecognizer(labels="written", **TINY_ASR).save_pretrained(tmp_path / "written"))
    with pytest.raises(ValueError, match="needs the LM's text tokenizer"):
        heard_questions(copy, written)
    heard = heard_questions(copy, written, folders["tokenizer"])
    tokenizer = load_text_tokenizer(folders["tokenizer"])
    assert len(heard) == ROWS and all(int(q.token_ids.max()) < len(tokenizer) for q in heard)
    assert all(q.token_ids.shape[1] == 1 and bool((q.probs == 1).all()) for q in heard)
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(tmp_path / "other-tokenizer")
    heard_questions(copy, written, str(tmp_path / "other-tokenizer"))
    assert len(list((tmp_path / "heard").glob("*.pt"))) == 2
    dm = datamodule(folders, hearing=written, tokenizer=folders["tokenizer"])
    assert [q.token_ids.tolist() for q in dm.train_set.heard] == [q.token_ids.tolist() for q in heard]


# ---------------------------------------------------------------------- sampler
def test_speech_apart_batches_cover_every_index_once_per_epoch(dm):
    data = dm.train_set
    assert len(data) == 20 + ROWS * 2
    seen_speech = set()
    for epoch in range(3):
        data.epoch = epoch
        sampler = SpeechApartSampler(data, batch_size=4, speech_batch_size=2, shuffle=True, seed=0)
        batches = list(sampler)
        assert len(sampler) == len(batches)
        assert Counter(i for b in batches for i in b) == Counter(range(len(data)))
        for batch in batches:
            speech = {data.has_speech(i) for i in batch}
            assert len(speech) == 1 and len(batch) <= (2 if speech == {True} else 4)
        seen_speech |= {i for b in batches for i in b if data.has_speech(i)}
        assert any(data.has_speech(b[0]) for b in batches) and any(not data.has_speech(b[0]) for b in batches)
    # Only rows whose reply the corpus has spoken can carry speech.
    for i in seen_speech:
        assert data[i]["reply"] in data.speech
    data.epoch = 0
    unshuffled = list(SpeechApartSampler(data, 4, 2, shuffle=False, seed=0))
    assert all(a < b for batch in unshuffled for a, b in zip(batch, batch[1:]))


def test_has_speech_is_a_function_of_seed_epoch_and_index(folders, dm):
    data = dm.train_set
    twin = ReasoningDataset(data.rows, data.heard, data.speech, 20, 2, 0.5, seed=0, out_of_scope=data.out_of_scope)
    other_seed = ReasoningDataset(data.rows, data.heard, data.speech, 20, 2, 0.5, seed=1,
                                  out_of_scope=data.out_of_scope)
    for epoch in (0, 1):
        data.epoch = twin.epoch = other_seed.epoch = epoch
        flags = [data.has_speech(i) for i in range(len(data))]
        assert flags == [data.has_speech(i) for i in range(len(data))] == [twin.has_speech(i) for i in range(len(twin))]
        for i in range(len(data)):
            item = data[i]
            assert (item["reply_codes"] is not None) == flags[i]
            assert item["question_written"] == twin[i]["question_written"]
    data.epoch = twin.epoch = 0
    per_epoch = []
    for epoch in range(4):
        data.epoch = epoch
        per_epoch.append([data.has_speech(i) for i in range(20, len(data))])
    assert len({tuple(f) for f in per_epoch}) > 1  # a new draw each epoch
    data.epoch = 0
    assert [data[i]["question_written"] for i in range(20)] != [other_seed[i]["question_written"] for i in range(20)]
    never = ReasoningDataset(data.rows, data.heard, data.speech, 20, 2, 0.0, seed=0)
    always = ReasoningDataset(data.rows, data.heard, data.speech, 20, 2, 1.0, seed=0)
    assert not any(never.has_speech(i) for i in range(len(never)))
    spoken = [i for i in range(20, len(always)) if always[i]["reply"] in data.speech]
    assert len(spoken) == 2 * (ROWS - 2) and all(always.has_speech(i) for i in spoken)


def test_items_text_problems_first_then_spoken_rows(dm):
    data = dm.train_set
    for i in range(20):
        assert data[i]["heard"] is None
    for i in range(20, len(data)):
        row = (i - 20) % ROWS
        item = data[i]
        assert item["heard"] is data.heard[row] and item["reply"] == data.rows[row]["reply"]
        assert item["question_written"] == data.rows[row]["question_written"]


def test_without_hearing_spoken_questions_are_left_out(folders):
    dm = datamodule(folders, hearing=None)
    assert len(dm.train_set) == 20 and dm.train_set.heard is None
    with pytest.raises(ValueError, match="speech_probability"):
        ReasoningDataModule(folders["manifest"], speech_probability=1.5)


def test_a_manifest_without_questions_is_refused_in_one_line(folders, tmp_path):
    """A reply bank (`s2s data replies`) trains the word decoder, not the LM: said so before any cache."""
    from s2s.data.manifest import read_manifest, write_manifest

    rows = [{k: v for k, v in row.items() if not k.startswith("question")}
            for row in read_manifest(folders["manifest"])]
    bank = write_manifest(tmp_path / "manifest.jsonl", rows)
    with pytest.raises(ValueError, match="has no questions"):
        ReasoningDataModule(str(bank), codec=folders["codec"], num_codebooks=K).setup("fit")


# ---------------------------------------------------------------------- batches through the LM
@pytest.fixture(scope="module")
def lm(folders) -> SpeechReasoningModule:
    torch.manual_seed(0)
    return SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                                 hearing=folders["hearing"])


def test_batches_give_finite_losses_and_end_where_they_should(dm, lm):
    dm.train_set.epoch = 0
    kinds = set()
    for batch in dm.train_dataloader():
        assert set(batch) == {"question_written", "thought", "reply", "heard", "question_codes", "reply_codes",
                              "reply_word_frames", "voice_codes", "style"}
        nothing = [None] * len(batch["reply"])  # no `align_with`: no word timing; one voice: no prompt, no style
        assert batch["reply_word_frames"] == batch["voice_codes"] == batch["style"] == nothing
        encoded = lm.encode_batch(batch)
        ids, mask = encoded["ids"], encoded["attention_mask"]
        for row in range(ids.shape[0]):
            length = int(mask[row].sum())
            last = ids[row, length - 1].item()
            with_speech = batch["reply_codes"][row] is not None
            assert last == (lm.vocab.eot if with_speech else lm.vocab.speak)
            heard = batch["heard"][row]
            assert int((ids[row] == lm.vocab.heard).sum()) == (0 if heard is None else len(heard))
            assert (ids[row, :1] == (lm.vocab.question if heard is not None else lm.vocab.text_question)).all()
            kinds.add((heard is not None, with_speech))
        losses = lm.losses(encoded)
        assert all(torch.isfinite(v) for v in losses.values())
        assert ("speech_loss" in losses) == any(c is not None for c in batch["reply_codes"])
    assert {(False, False), (True, False), (True, True)} <= kinds
    lm.zero_grad()
    losses["loss"].backward()
    assert lm.model.adapter.project.weight.grad is not None
    lm.zero_grad()


def test_val_loader_is_in_order_and_the_train_loader_follows_the_epoch(folders, dm):
    manifest = folders["manifest"]
    dm_val = datamodule(folders, val=manifest)
    assert len(dm_val.val_set) == ROWS  # no text problems, each spoken question once
    order = [i for batch in dm_val.val_dataloader().batch_sampler for i in batch]
    assert sorted(order) == list(range(ROWS))

    class Trainer:
        current_epoch = 3

    dm_val.trainer = Trainer()
    dm_val.train_dataloader()
    assert dm_val.train_set.epoch == 3


def test_each_trainer_epoch_draws_new_problems(folders):
    """Lightning makes the train loader once; the sampler must still follow the trainer's epoch."""
    import lightning as L

    class Recorder(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))
            self.seen: dict[int, list[str]] = {}

        def training_step(self, batch, batch_idx):
            self.seen.setdefault(self.current_epoch, []).extend(batch["question_written"])
            return self.weight.square().sum()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    dm = ReasoningDataModule(folders["manifest"], hearing=folders["hearing"], codec=folders["codec"],
                             num_codebooks=K, text_examples=8, batch_size=4, speech_batch_size=2)
    recorder = Recorder()
    L.Trainer(max_epochs=2, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
              enable_model_summary=False).fit(recorder, datamodule=dm)
    assert dm.train_set.epoch == 1 and sorted(recorder.seen) == [0, 1]
    assert all(len(seen) == 8 + ROWS for seen in recorder.seen.values())
    spoken = sorted(row["question_written"] for row in dm.train_set.rows)
    texts = [sorted(set(seen) - set(spoken)) for seen in recorder.seen.values()]
    assert texts[0] != texts[1]  # fresh text problems in the second epoch


def test_spoken_questions_can_reach_the_lm_as_codec_tokens(folders, lm):
    """question_input="codes": the same rows, the question as codec tokens [K, F] in a <question> block."""
    dm = ReasoningDataModule(train=folders["manifest"], codec=folders["codec"], num_codebooks=lm.vocab.num_codebooks,
                             text_examples=0, speech_probability=0.0, batch_size=4, question_input="codes")
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    assert all(len(b["heard"]) <= dm.hparams.speech_batch_size for b in batches)  # codec-token questions are long
    batch = batches[0]
    assert all(h is None for h in batch["heard"]) and all(c is not None for c in batch["question_codes"])
    encoded = lm.encode_batch(batch)
    for row, codes in zip(encoded["ids"], batch["question_codes"]):
        assert int(lm.vocab.is_speech(row).sum()) == codes.numel()  # no reply speech: only the question's tokens
    assert torch.isfinite(lm.losses(encoded)["loss"])
    with pytest.raises(ValueError, match="question_input"):
        ReasoningDataModule(train=folders["manifest"], question_input="waveform")


def test_fit_refuses_data_cut_with_another_tokenizer(folders, tmp_path):
    """A heard question's token ids are only meaningful in the tokenizer that cut them."""
    import lightning as L

    train_text_tokenizer(folders["manifest"], vocab_size=280).save_pretrained(tmp_path / "other")
    torch.manual_seed(0)
    written = str(CTCRecognizer(labels="written", **TINY_ASR).save_pretrained(tmp_path / "written"))
    model = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                                  hearing=written)
    options = {"hearing": written, "codec": folders["codec"], "num_codebooks": K, "text_examples": 4,
               "batch_size": 4, "speech_batch_size": 2}

    def fit(tokenizer: str) -> None:
        L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
                  enable_model_summary=False).fit(model, datamodule=ReasoningDataModule(folders["manifest"],
                                                                                        tokenizer=tokenizer, **options))

    with pytest.raises(ValueError, match="give both the same folder"):
        fit(str(tmp_path / "other"))
    fit(folders["tokenizer"])  # the model's own: trains


def test_validation_answers_questions_and_logs_the_answer_accuracy(folders, monkeypatch):
    """val/accuracy_thought: the first batch's questions answered by generation and scored as s2s evaluate
    scores them. A model that writes each reference thought scores 1; one that writes nothing scores 0."""
    import lightning as L

    from s2s.lm import generate as generation

    torch.manual_seed(0)
    model = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                                  hearing=folders["hearing"], val_answer_examples=3)
    rows = {row["question_written"]: row["thought"] for row in read_manifest(folders["manifest"])}
    asked = []

    def oracle(lm, prompt, heard=None, **options):
        asked.append((heard is not None, options["calculator"] if "calculator" in options else False))
        thought = next(iter(rows.values())) if heard is not None else ""

        class Reply:
            pass

        reply = Reply()
        reply.thought = thought
        return reply

    monkeypatch.setattr(generation, "generate", oracle)
    dm = ReasoningDataModule(folders["manifest"], val=folders["manifest"], hearing=folders["hearing"],
                             codec=folders["codec"], num_codebooks=K, text_examples=2, speech_probability=0.0,
                             batch_size=4, speech_batch_size=2)
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1,
                        num_sanity_val_steps=0, val_check_interval=1)
    trainer.fit(model, datamodule=dm)
    accuracy = float(trainer.callback_metrics["val/accuracy_thought"])
    first_batch = next(iter(dm.val_dataloader()))
    expected = [answer == next(iter(rows.values())).splitlines()[-1] for answer in
                (rows[q].splitlines()[-1] for q in first_batch["question_written"][:3])]
    assert len(asked) == 3 and all(spoken and not calculator for spoken, calculator in asked)
    assert accuracy == pytest.approx(sum(expected) / 3) and 0 < accuracy <= 1
    # The real generation path runs too (a random model: any score, but a score).
    monkeypatch.undo()
    trainer = L.Trainer(max_steps=1, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=1,
                        num_sanity_val_steps=0, val_check_interval=1)
    trainer.fit(model, datamodule=dm)
    assert 0.0 <= float(trainer.callback_metrics["val/accuracy_thought"]) <= 1.0
    assert float(trainer.callback_metrics["val/thought_tokens"]) >= 1  # the thoughts' mean length, as evaluate
    # In a bf16 run too, with float16-valued weights (a model exported with --half and fine-tuned), whose
    # products FastDecoder runs in float16 on float32 inputs only: answering runs outside the autocast.
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(parameter.half().float())
    trainer = L.Trainer(max_steps=1, accelerator="cpu", precision="bf16-mixed", logger=False,
                        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                        limit_val_batches=1, num_sanity_val_steps=1, val_check_interval=1)
    trainer.fit(model, datamodule=dm)
    assert 0.0 <= float(trainer.callback_metrics["val/accuracy_thought"]) <= 1.0


def test_word_token_counts_cut_a_text_into_its_words(folders):
    tokenizer = load_text_tokenizer(folders["tokenizer"])
    for text in ("It is forty two.", "  Seven  ", "The answer is 1024.", ""):
        counts = word_token_counts(tokenizer, text)
        assert len(counts) == len(text.split()) and sum(counts) == len(tokenize(tokenizer, [text])[0])
        if text != text.strip():
            continue  # spaces at either end go with the nearest word
        for i, word in enumerate(text.split()):  # byte-level: a word's ids are those of " word" (but the first)
            assert counts[i] == len(tokenize(tokenizer, [word if i == 0 else " " + word])[0]), (text, word)


def test_reply_opening_is_the_ids_before_the_first_number_word(folders):
    tokenizer = load_text_tokenizer(folders["tokenizer"])
    for reply, opening in (("The answer is forty two.", "The answer is"), ("It lasts 95 minutes.", "It lasts"),
                           ("Sixteen is smaller.", ""), ("It will be nine oh five.", "It will be"),
                           ("No number here.", "No number here.")):
        ids, n = tokenize(tokenizer, [reply])[0], reply_opening(tokenizer, reply)
        # A lone space id before digits goes with the word before it, as word_token_counts cuts words.
        assert n <= len(ids) and tokenizer.decode(ids[:n]).strip() == opening


def test_replies_timed_by_a_judge_train_the_word_aligned_format(folders, tmp_path):
    torch.manual_seed(0)
    judge = CTCRecognizer(labels="chars", **TINY_ASR).save_pretrained(tmp_path / "judge")
    dm = datamodule(folders, align_with=str(judge), speech_probability=0.5)
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                               hearing=folders["hearing"], format="word_aligned")
    tokenizer, kinds = lm.tokenizer, set()
    for batch in dm.train_dataloader():
        encoded = lm.encode_batch(batch)
        for row, codes in enumerate(batch["reply_codes"]):
            frames, reply = batch["reply_word_frames"][row], batch["reply"][row]
            ids = encoded["ids"][row, : int(encoded["attention_mask"][row].sum())]
            after_think = ids[(ids == lm.vocab.end_think).nonzero()[0, 0] + 1:].tolist()
            if codes is None:  # ends after its first word, where the speech would begin
                assert frames is None and after_think == tokenize(tokenizer, [reply])[0][: word_token_counts(
                    tokenizer, reply)[0]]
                kinds.add("text")
                continue
            assert len(frames) == len(reply.split()) and sum(frames) == codes.shape[1]
            turn = lm.format.parse(ids)
            assert turn.reply_ids == tokenize(tokenizer, [reply])[0] and torch.equal(turn.reply_codes, codes)
            runs = [(n, f) for n, f in zip(word_token_counts(tokenizer, reply), frames)]
            assert sum(n for n, _ in turn.reply_alignment) == sum(n for n, _ in runs)
            assert after_think[0] < lm.vocab.text_vocab_size  # the first word's text comes before any speech
            kinds.add("speech")
        assert torch.isfinite(lm.losses(encoded)["loss"])
    assert kinds == {"text", "speech"}
    cache = list((Path(folders["manifest"]).parent / "reply_audio-words").glob("*.pt"))
    assert len(cache) == 1  # timed once, beside the manifest


def test_a_styled_corpus_gives_each_row_its_own_reply_voice_prompt_and_style(folders, tmp_path):
    """reply_speech="row": speech by row id, with the row's voice prompt and style words; questions as text."""
    rows = [json.loads(line) for line in Path(folders["manifest"]).read_text().splitlines()]
    for i, row in enumerate(rows):
        row["id"] = f"styled{i}"
        row["reply_style"] = ["fast", "", "slow high"][i % 3]
        if "reply_audio" in row and i % 2 == 0:
            row["voice_audio"] = f"wavs/v{i}.wav"
            audio.save(tmp_path / row["voice_audio"], sound(0.6, 300 + 20 * i, 50 + i)[None], 16000)
    for sub in ("wavs",):
        for wav in (Path(folders["manifest"]).parent / sub).iterdir():
            (tmp_path / sub / wav.name).write_bytes(wav.read_bytes())
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    dm = ReasoningDataModule(str(manifest), hearing=folders["hearing"], codec=folders["codec"], num_codebooks=K,
                             text_examples=6, question_input="text", reply_speech="row", speech_probability=1.0,
                             batch_size=4, speech_batch_size=2)
    dm.setup("fit")
    lm = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"])
    by_reply = {row["reply"]: row for row in rows}
    seen = {"prompted": 0, "plain": 0, "text problem": 0}
    for batch in dm.train_dataloader():
        assert batch["heard"] == [None] * len(batch["heard"])  # every question as text
        encoded = lm.encode_batch(batch)
        for i, codes in enumerate(batch["reply_codes"]):
            row = by_reply.get(batch["reply"][i]) if codes is not None else None
            if row is None:  # a fresh text problem: no row, so no speech in any voice
                assert codes is None and batch["voice_codes"][i] is None and batch["style"][i] is None
                seen["text problem"] += 1
                continue
            assert (batch["style"][i] or "") == row["reply_style"]
            turn = lm.format.parse(encoded["ids"][i, : int(encoded["attention_mask"][i].sum())])
            assert torch.equal(turn.reply_codes, codes)
            assert turn.style_ids == (tokenize(lm.tokenizer, [row["reply_style"]])[0] or None)
            assert (turn.voice_codes is not None) == ("voice_audio" in row)
            seen["prompted" if "voice_audio" in row else "plain"] += 1
    assert all(seen.values()), seen
    with pytest.raises(ValueError, match="reply_speech must be 'sentence' or 'row'"):
        ReasoningDataModule(str(manifest), reply_speech="voice")


def test_lm_phrases_with_a_judge_counts_how_the_replies_say_each_word(folders, tmp_path, capsys):
    """`s2s lm phrases --align-with JUDGE`: the codes of each reply word, at the length the judge timed it, are
    what the model folder's speech drafts give for that word; the folder keeps them through loading and saving."""
    from s2s.cli import main
    from s2s.lm.data import reply_word_frames

    torch.manual_seed(0)
    judge = str(CTCRecognizer(labels="chars", **TINY_ASR).save_pretrained(tmp_path / "judge"))
    timed = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                                  format="word_timed")
    folder = timed.save_pretrained(tmp_path / "model")
    main(["lm", "phrases", str(folder), "--manifest", folders["manifest"], "--align-with", judge, "--min-count", "1"])
    assert capsys.readouterr().out.split() == [str(folder / "phrases.json.gz"), str(folder / "speech_drafts.json.gz")]
    model = SpeechReasoningLM.from_pretrained(folder)
    manifest = Path(folders["manifest"])
    codes = reply_codes(manifest, folders["codec"], K)
    frames = reply_word_frames(manifest, codes, Codec.frame_rate.fget(load_codec_of(folders)), judge)
    checked, skipped, replies = 0, 0, [row["reply"] for row in read_manifest(manifest)]
    for reply, grid in codes.items():
        start, reply_ids, read = 0, tokenize(model.tokenizer, [reply])[0], 0
        for word, count, length in zip(reply.split(), word_token_counts(model.tokenizer, reply), frames[reply]):
            ids, read = tuple(reply_ids[read: read + count]), read + count
            said_once = sum(r.split().count(word) for r in replies) == 1  # in the whole corpus, audio or not
            if said_once and count and 0 < length <= timed.vocab.durations:
                if ids not in model.speech_drafts.durations:  # a lone-space id: word_runs starts the next word at it
                    assert model.tokenizer.decode(list(ids[-1:])).isspace(), (word, reply)
                    skipped += 1
                    start += length
                    continue
                assert model.speech_drafts.durations[ids] == length
                assert model.speech_drafts.codes[(ids, length)] == grid[:, start: start + length].T.tolist()
                checked += 1
            start += length
    assert checked >= 3 and skipped <= 1
    again = SpeechReasoningLM.from_pretrained(model.save_pretrained(tmp_path / "saved"))
    assert again.speech_drafts.codes == model.speech_drafts.codes
    plain = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"])
    plain_folder = plain.save_pretrained(tmp_path / "plain")
    with pytest.raises(SystemExit) as exit_info:
        main(["lm", "phrases", str(plain_folder), "--manifest", folders["manifest"], "--align-with", judge])
    err = capsys.readouterr().err.strip()  # after the loader's progress bars, one line
    assert exit_info.value.code == 2 and "Traceback" not in err
    assert "only the word_timed formats" in err.splitlines()[-1]


def load_codec_of(folders):
    from s2s.codecs import load_codec

    return load_codec(folders["codec"], num_codebooks=K)


def test_a_share_of_text_problems_are_questions_to_decline(folders, dm):
    from s2s.data.problems import OUT_OF_SCOPE_THOUGHT

    data = dm.train_set
    declining = ReasoningDataset(data.rows, data.heard, data.speech, 200, 0, 0.0, seed=0, out_of_scope=0.3)
    thoughts = [declining[i]["thought"] for i in range(200)]
    share = sum(t == OUT_OF_SCOPE_THOUGHT for t in thoughts) / 200
    assert 0.2 < share < 0.4
    never = ReasoningDataset(data.rows, data.heard, data.speech, 200, 0, 0.0, seed=0, out_of_scope=0.0)
    assert all(never[i]["thought"] != OUT_OF_SCOPE_THOUGHT for i in range(200))


def test_a_share_of_text_problems_come_as_heard_transcripts(folders, dm):
    """heard_text gives that share of text problems at the <heard> ids, as the LM's tokens of a transcript with
    the written question's numbers; the LM trains on such a batch; the option needs the tokenizer."""
    tokenizer = load_text_tokenizer(folders["tokenizer"])
    heard_dm = datamodule(folders, tokenizer=folders["tokenizer"], heard_text=0.5, text_examples=200)
    data = heard_dm.train_set
    items = [data[i] for i in range(200)]
    heard = [item for item in items if item["heard"] is not None]
    assert 60 < len(heard) < 140
    for item in heard:
        said = tokenizer.decode(item["heard"].token_ids[:, 0].tolist())
        assert re.findall(r"\d+", said) == re.findall(r"\d+", item["question_written"]), (said, item)
    assert any(tokenizer.decode(item["heard"].token_ids[:, 0].tolist()).strip() != item["question_written"]
               for item in heard)  # some are written as an ear writes them
    plain = datamodule(folders, tokenizer=folders["tokenizer"], text_examples=200).train_set
    assert all(plain[i]["heard"] is None for i in range(200))
    model = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                                  num_codebooks=K, hearing=folders["hearing"], heard_hidden=False)
    batch = collate([item for item in items if item["heard"] is not None and item["reply_codes"] is None][:4])
    assert torch.isfinite(model.training_step(batch, 0))
    mapping = SpeechReasoningModule(backbone_config=TINY_LLAMA, tokenizer=folders["tokenizer"], codec=folders["codec"],
                                    num_codebooks=K, hearing=folders["hearing"])  # heard_hidden: the ear's states
    with pytest.raises(ValueError, match="a transcript has none.*heard_hidden: false"):
        mapping.training_step(batch, 0)
    with pytest.raises(ValueError, match="heard_text .* needs the LM's tokenizer"):
        ReasoningDataModule(folders["manifest"], hearing=folders["hearing"], heard_text=0.5)
    with pytest.raises(ValueError, match="heard_text must lie in"):
        ReasoningDataModule(folders["manifest"], tokenizer=folders["tokenizer"], heard_text=1.5)
    with pytest.raises(ValueError, match="needs hear_text"):
        ReasoningDataset(data.rows, data.heard, data.speech, 20, 0, 0.0, seed=0, heard_text=0.5)
