"""Benchmarks, smoke-run at a tiny size: they run and print their figures."""
import importlib.util
import math
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(name: str):
    spec = importlib.util.spec_from_file_location(f"benchmark_{name}", BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generate_benchmark_prints_frames_per_second_and_ttfa_for_ours_and_generate(capsys):
    benchmark = load_benchmark("generate")
    rows = benchmark.main(["--dim", "32", "--layers", "1", "--heads", "2", "--codebooks", "2", "--text-vocab", "300",
                           "--frames", "4", "--thought", "4", "--reply", "2", "--prompt-frames", "8",
                           "--repeats", "1", "--moshi-eager"])
    printed = capsys.readouterr().out
    timed = ["ours", "generate()"] + (["moshi"] if "error" not in rows["moshi"] else [])
    for name in timed:
        row = rows[name]
        assert row["frames"] == 4, name
        for figure in ("ttfa_ms", "frames_per_s", "total_ms", "ids_per_s", "params_m"):
            assert math.isfinite(row[figure]) and row[figure] > 0, (name, figure, row[figure])
        assert any(line.startswith(name) and f"{row['ttfa_ms']:.1f}" in line for line in printed.splitlines()), name
    assert any(line.startswith("moshi") for line in printed.splitlines())  # its figures, or why it did not run


def test_latency_benchmark_times_every_format_with_random_weights_and_forced_lengths(tmp_path, capsys):
    """Tiny sizes, the bundled example question only: a row per format, ttfa <= total, the target lines."""
    import json

    import torch

    from s2s.codecs.tiny.codec import save_net
    from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
    from s2s.lm.text_tokenizer import train_text_tokenizer

    torch.manual_seed(0)
    net = TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                       codebook_size=16, decoder_dim=16, decoder_layers=1))
    codec = save_net(net.eval(), tmp_path / "codec")
    manifest = tmp_path / "texts.jsonl"
    texts = ["Ben has 9 stickers and buys 5 more.", "Then 9 + 5 = 14.", "So the answer is 14."]
    manifest.write_text("".join(json.dumps({"thought": text}) + "\n" for text in texts))
    train_text_tokenizer(manifest, vocab_size=280).save_pretrained(tmp_path / "tokenizer")

    benchmark = load_benchmark("latency")
    rows = benchmark.main(["--random", "--tokenizer", str(tmp_path / "tokenizer"), "--codec", str(codec),
                           "--codebooks", "2", "--dim", "32", "--layers", "1", "--heads", "2", "--ffn", "64",
                           "--hearing-dim", "24", "--hearing-layers", "1", "--hearing-heads", "2",
                           "--thought", "5", "--reply", "2", "--frames", "4", "--thought-chunk", "3",
                           "--speech-chunk", "2", "--questions", "0", "--repeats", "1", "--threads", "1"])
    printed = capsys.readouterr().out
    assert [row["format"] for row in rows] == ["think_then_speak", "think_while_speaking", "text_guided",
                                               "word_aligned", "word_timed", "word_timed_while_thinking"]
    for row in rows:
        assert row["source"] == "random" and row["runs"] == 1 and row["thought_tokens"] == 5
        assert 0 < row["ttfa_ms_p50"] <= row["ttfa_ms_p90"] <= row["total_ms_p50"], row
        assert row["rtf_p50"] > 0 and row["audio_s_mean"] == 4 * 320 / 16000
    assert "thought chunk 3 ids, speech chunk 2 frames" in printed
    assert "a word of the reply's opening after every 3 thought ids" in printed
    for name, target in (("think_then_speak", 350), ("think_while_speaking", 150), ("word_timed", 350),
                         ("word_timed_while_thinking", 150)):
        assert any(line.startswith(f"{name} p50 ttfa") and f"(target <= {target})" in line
                   for line in printed.splitlines()), name


def test_train_benchmark_prints_lightning_and_bare_throughput_and_their_ratio(capsys):
    benchmark = load_benchmark("train")
    result = benchmark.main(["--dim", "32", "--layers", "1", "--heads", "2", "--text-vocab", "300", "--codebooks", "2",
                             "--batch", "2", "--reply-frames", "4", "--steps", "3", "--warmup", "1", "--threads", "1"])
    printed = capsys.readouterr().out
    for name in ("lightning", "bare"):
        assert math.isfinite(result[name]["tokens_per_s"]) and result[name]["tokens_per_s"] > 0
        assert any(line.startswith(name) for line in printed.splitlines())
    assert result["ratio"] == result["lightning"]["tokens_per_s"] / result["bare"]["tokens_per_s"]
    assert f"ratio lightning / bare: {result['ratio']:.3f}" in printed


def test_train_benchmark_trains_the_same_model_the_same_way_in_both_loops():
    """Same batches, same initial weights, same optimiser and schedule: both loops end with the same weights."""
    import copy

    import torch

    benchmark = load_benchmark("train")
    torch.manual_seed(0)
    lm = benchmark.build_lm(32, 1, 2, 2, 64, 300, train=True)
    batches = benchmark.make_batches(3, 2, lm.vocab.num_codebooks, lm.vocab.codebook_size, reply_frames=3)
    twin = copy.deepcopy(lm)
    benchmark.run_lightning(lm, batches, clip=1.0)
    benchmark.run_bare(twin, batches, clip=1.0)
    for (name, a), b in zip(lm.state_dict().items(), twin.state_dict().values()):
        assert torch.allclose(a, b, atol=1e-5), name


def test_speaker_id_benchmark_scores_replies_per_style_and_prompts(tmp_path, capsys):
    import json

    import torch

    from s2s import audio
    from s2s.style.speaker import SpeakerClassifier

    rows = []
    for i in range(4):
        row = {"reply_voice": ("a", "b")[i % 2], "reply_style": ("fast", "")[i // 2], "reply_audio": f"r{i}.wav"}
        audio.save(tmp_path / row["reply_audio"], 0.3 * torch.randn(1, 8000), 16000)
        if i % 2:
            row["voice_audio"] = f"v{i}.wav"
            audio.save(tmp_path / row["voice_audio"], 0.3 * torch.randn(1, 8000), 16000)
        rows.append(row)
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    torch.manual_seed(0)
    SpeakerClassifier(voices=["a", "b"], channels=16, dim=8).save_pretrained(tmp_path / "speaker")
    result = load_benchmark("speaker_id").main(["--speaker", str(tmp_path / "speaker"),
                                                "--manifest", str(tmp_path / "m.jsonl")])
    assert json.loads(capsys.readouterr().out) == result
    assert result["reply_audio"]["n"] == 4 and set(result["reply_audio"]["by_style"]) == {"fast", "normal"}
    assert result["voice_audio"]["n"] == 2 and set(result["voice_audio"]["by_style"]) == {"prompt"}
    assert all(0 <= kind["accuracy"] <= 1 for kind in result.values())


def test_pitch_benchmark_finds_espeaks_own_low_and_high(tmp_path, capsys):
    import json

    import torch

    from s2s import audio
    from s2s.data.espeak import render
    from s2s.data.manifest import write_manifest

    rows = []
    for i, voice in enumerate(("en-us+f3", "en+grandpa")):
        row = {"id": f"r{i}"}
        for word, pitch in (("low", 20), ("normal", 50), ("high", 80)):
            samples, rate = render("It is forty two.", voice, 170, pitch)
            row[f"reply_audio_{word}"] = f"r{i}.{word}.wav"
            audio.save(tmp_path / row[f"reply_audio_{word}"], torch.from_numpy(samples)[None].float(), rate)
        rows.append(row)
    result = load_benchmark("pitch").main(["--manifest", str(write_manifest(tmp_path / "m.jsonl", rows))])
    assert json.loads(capsys.readouterr().out) == result and result["pairs"] == 4
    assert result["direction_right"]["ours (SHS)"] == {"recording": 1.0, "codec round trip": 1.0}
    assert set(result["direction_right"]) == {"ours (SHS)", "torchaudio detect_pitch_frequency"}


def test_voice_cloning_benchmark_scores_conversions_into_held_out_voices(tmp_path, capsys):
    import json

    import torch

    from s2s import audio
    from s2s.data.manifest import write_manifest
    from s2s.style.speaker import SpeakerClassifier

    rows = [{"split": "test", "question_voice": voice, "question_audio": f"{voice}{k}.wav"}
            for voice in ("a", "b", "c") for k in range(2)] + [{"split": "train", "question_voice": "d"}]
    for row in rows[:-1]:
        audio.save(tmp_path / row["question_audio"], 0.3 * torch.randn(1, 16000), 16000)
    write_manifest(tmp_path / "m.jsonl", rows)
    torch.manual_seed(0)
    SpeakerClassifier(voices=["x", "y"], channels=16, dim=8).save_pretrained(tmp_path / "speaker")
    result = load_benchmark("voice_cloning").main(["--manifest", str(tmp_path / "m.jsonl"),
                                                   "--speaker", str(tmp_path / "speaker")])
    assert json.loads(capsys.readouterr().out) == result
    assert result["voices"] == 3 and result["chance"] == round(1 / 3, 4)
    assert set(result["identified"]) == {"converted", "reference (ceiling)"}
    assert all(0 <= value <= 1 for value in result["identified"].values())
    assert set(result["similarity"]) == {"converted", "source (floor)", "reference (ceiling)"}
    assert all(-1 <= value <= 1 for value in result["similarity"].values())


def test_notebooks_benchmark_times_each_notebook_in_the_mode_asked_against_its_goal(tmp_path, capsys):
    """Shipped mode by default (goal 300 s), smoke mode with --mode smoke (goal 180 s): the mode reaches the
    notebook's parameters cell, so a notebook that is slow only in shipped mode is quick in smoke mode."""
    import nbformat

    seen = tmp_path / "mode_seen.txt"
    slow = (f"import time, pathlib\npathlib.Path({str(seen)!r}).write_text(MODE)\n"
            "time.sleep(1.5 if MODE == 'shipped' else 0)")
    for name, code in (("quick", "x = 1"), ("slow", slow)):
        parameters = nbformat.v4.new_code_cell('MODE = "shipped"', metadata={"tags": ["parameters"]})
        notebook = nbformat.v4.new_notebook(cells=[parameters, nbformat.v4.new_code_cell(code)])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, tmp_path / f"{name}.ipynb")
    benchmark = load_benchmark("notebooks")
    paths = [str(tmp_path / "quick.ipynb"), str(tmp_path / "slow.ipynb")]
    rows = benchmark.main([*paths, "--budget", "1.4"])
    printed = capsys.readouterr().out
    assert [row["notebook"] for row in rows] == ["quick.ipynb", "slow.ipynb"]
    assert {row["mode"] for row in rows} == {"shipped"}
    assert rows[1]["seconds"] >= 1.5 and not rows[1]["within_budget"] and seen.read_text() == "shipped"
    assert any(line.startswith("all 2:") and "over budget:" in line and "slow.ipynb" in line
               for line in printed.splitlines()) and any(
        line.startswith("slow.ipynb") and line.endswith("NOT met") for line in printed.splitlines())

    rows = benchmark.main([*paths, "--mode", "smoke"])
    printed = capsys.readouterr().out
    assert {row["mode"] for row in rows} == {"smoke"} and seen.read_text() == "smoke" and rows[1]["within_budget"]
    assert "smoke mode" in printed.splitlines()[0] and all(
        line.split()[2] == "180" for line in printed.splitlines() if line.startswith(("quick", "slow")))


def test_exposure_bias_benchmark_judges_corpus_teacher_forced_and_free_running_speech(tmp_path, capsys):
    """A tiny word-timed model on a tiny corpus: every way judged for every reply with speech; the teacher-forced
    codes are the model's argmax where it names a code of the codebook due, else the corpus's."""
    import json
    import random

    import torch

    from s2s import audio
    from s2s.asr.recognizer import CTCRecognizer
    from s2s.codecs.tiny.codec import save_net
    from s2s.codecs.tiny.model import TinyCodecConfig, TinyCodecNet
    from s2s.data.problems import generate_problem
    from s2s.lm.model import SpeechReasoningLM
    from s2s.lm.text_tokenizer import train_text_tokenizer

    rng, rows = random.Random(0), []
    for i in range(3):
        problem = generate_problem(rng)
        rows.append({"id": f"p{i}", "family": problem.family, "question": problem.question,
                     "question_written": problem.question_written, "thought": problem.thought,
                     "answer": problem.answer, "reply": problem.reply, "reply_audio": f"wavs/r{i}.wav"})
        tone = torch.sin(2 * math.pi * (300 + 90 * i) * torch.arange(8000 + 1600 * i) / 16000)
        audio.save(tmp_path / rows[-1]["reply_audio"], 0.3 * tone[None], 16000)
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(row) + "\n" for row in rows))
    torch.manual_seed(0)
    codec = save_net(TinyCodecNet(TinyCodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=8, num_codebooks=2,
                                                  codebook_size=16, decoder_dim=16, decoder_layers=1)).eval(),
                     tmp_path / "codec")
    train_text_tokenizer(manifest, vocab_size=300).save_pretrained(tmp_path / "tokenizer")
    judge = CTCRecognizer(labels="chars", dim=24, layers=1, heads=2, ff_mult=2, conv_kernel=3,
                          subsample_channels=8).save_pretrained(tmp_path / "judge")
    model = SpeechReasoningLM(backbone_config={"model_type": "llama", "hidden_size": 32, "num_hidden_layers": 1,
                                               "num_attention_heads": 2, "intermediate_size": 64,
                                               "max_position_embeddings": 2048},
                              tokenizer=str(tmp_path / "tokenizer"), codec=str(codec), format="word_timed",
                              word_clock=True)
    folder = str(model.save_pretrained(tmp_path / "model"))
    from s2s.lm.word_decoder import WordDecoder

    vocab = model.vocab
    model.word_decoder = WordDecoder(vocab.text_vocab_size, 2, 16, vocab.durations, dim=16, layers=1, heads=2)
    decoded = str(model.save_pretrained(tmp_path / "with-decoder"))

    benchmark = load_benchmark("exposure_bias")
    result = benchmark.main([folder, decoded, "--manifest", str(manifest), "--judge", str(judge), "--rows", "3"])
    scores = result[folder]
    assert scores["n"] == 3 and all(0.0 <= scores[way] <= 1.0 for way in (*benchmark.WAYS[:-1], "reply_text_right"))
    assert scores["word-decoder"] is None  # a folder without a word decoder
    assert all(0.0 <= result[decoded][way] <= 1.0 for way in benchmark.WAYS)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == result

    model = SpeechReasoningLM.from_pretrained(folder)
    batch = benchmark.held_out_batches(folder, model, str(manifest), str(judge), rows=3)[0]
    ids = model.encode_batch(batch)["ids"][0]
    perfect = torch.cat([ids[1:], ids[:1]])  # the argmax after each id is the corpus's next id
    corpus, own = benchmark.teacher_forced_codes(model, ids, perfect)
    assert corpus == own and len(corpus) == batch["reply_codes"][0].numel()
    assert corpus == batch["reply_codes"][0].T.reshape(-1).tolist()  # frame by frame, codebooks in order
    wrong_codebook = torch.where(model.vocab.is_speech(perfect), model.vocab.speech_id(1, 0), perfect)
    assert benchmark.teacher_forced_codes(model, ids, wrong_codebook)[1] != corpus  # codebook 1's 0 where due
    assert benchmark.teacher_forced_codes(model, ids, torch.zeros_like(ids))[1] == corpus  # no code: the corpus's


def test_everyday_benchmark_scores_hand_written_questions_per_family(capsys):
    benchmark = load_benchmark("everyday")
    assert len(benchmark.QUESTIONS) == 42 and {f for f, _, _ in benchmark.QUESTIONS} >= {"time", "out_of_scope"}
    out = benchmark.main(["--ckpt", str(benchmark.BASELINE), "--limit", "7", "--show-wrong"])
    results = out["results"]["s2s-reasoner-tiny"]
    assert len(results) == 7 and all(r["right"] == (r["got"] == r["answer"]) for r in results)
    printed = capsys.readouterr().out
    right = sum(r["right"] for r in results)
    assert f"s2s-reasoner-tiny: {right}/7 right" in printed
    assert out["by_family"]["s2s-reasoner-tiny"]["arithmetic"] == sum(r["right"] for r in results[:6]) / 6


def test_everyday_benchmark_hears_the_questions_in_a_held_out_voice(capsys):
    """Spoken, each question is said once by espeak-ng in a held-out voice and heard by the model's ears."""
    benchmark = load_benchmark("everyday")
    out = benchmark.main(["--ckpt", str(benchmark.BASELINE), "--limit", "3", "--spoken", "espeak", "--show-wrong"])
    results = out["results"]["s2s-reasoner-tiny"]
    assert len(results) == 3 and all(r["heard"] is not None for r in results)  # went through the ears
    assert "questions heard, said by espeak" in capsys.readouterr().out
    voices = benchmark.spoken(benchmark.QUESTIONS[:3], "espeak")
    assert all(samples.size > rate // 2 for samples, rate in voices)  # a second of speech or so, each


def test_intelligibility_benchmark_finds_the_words_a_listener_missed_and_scores_each_voice():
    benchmark = load_benchmark("intelligibility")
    assert benchmark.missed_words("It is forty.", "It is forty four.") == ["44"]
    assert benchmark.missed_words("the delay before", "It is eighty four.") == ["it", "is", "84"]
    assert benchmark.missed_words("It is 84.", "It is eighty four.") == []  # numbers as digits on both sides
    assert benchmark.missed_words("It's 84.", "It is eighty four.") == []  # a contraction is not a word missed
    examples = [{"reply_text": "It is eighty four.", "answer": "84"}, {"reply_text": "Nine.", "answer": "9"}]
    row = benchmark.voice_row("model", ["the delay before", "Nine."], examples, reference_rate=1.0)
    assert row["heard_right"] == 0.5 and row["ratio"] == 0.5
    assert row["missed"]["84"] == 1 and 0 < row["wer"] < 1


def test_intelligibility_benchmark_says_the_reference_through_the_models_codec():
    """The codec row is the reference voice's own sentence, encoded and decoded with the codebooks the model
    writes: as long as the reference, and a different codec gives different audio."""
    from s2s.codecs import load_codec
    from s2s.eval.listener import reference_reply

    benchmark = load_benchmark("intelligibility")
    texts = ["It is eighty four.", "Nine."]
    four, two = load_codec("s2s-tiny", num_codebooks=4), load_codec("s2s-tiny", num_codebooks=2)
    said = benchmark.codec_round_trip(four, texts)
    assert [rate for _, rate in said] == [four.sample_rate] * 2
    for (wav, rate), text in zip(said, texts):
        reference, reference_rate = reference_reply(text)
        assert wav.shape[0] == 1 and abs(wav.shape[-1] / rate - reference.shape[-1] / reference_rate) < 0.05
    fewer = benchmark.codec_round_trip(two, texts[:1])[0][0]
    assert not torch.allclose(said[0][0], fewer, atol=1e-3)


def test_hearing_benchmark_takes_one_positive_weight_per_ear_or_says_what_to_give(tmp_path):
    import argparse

    import pytest

    benchmark = load_benchmark("hearing")
    assert benchmark.parse_weights("1,0.5") == [1.0, 0.5]
    for bad in ("1,-2", "one,two", ""):
        with pytest.raises(argparse.ArgumentTypeError, match="one positive number per ear"):
            benchmark.parse_weights(bad)
    (tmp_path / "manifest.jsonl").write_text("")
    with pytest.raises(SystemExit) as stop:
        benchmark.main(["--manifest", str(tmp_path / "manifest.jsonl"), "--weights", "1,1,1"])
    assert "gives 3 weights to 2 ears" in str(stop.value.code)


def test_hearing_benchmark_counts_each_ear_and_each_way_of_combining_them_from_the_same_hearings(tmp_path, capsys):
    """Two espeak-ng questions: the corpus's voice, which the CTC ear knows, and a held-out formant voice where
    Whisper, sure of itself, drops the first sentence; the oracle is at least every other way, the cross-check
    hears the second where the fallback does not."""
    import json

    import torch

    from s2s import audio
    from s2s.data import espeak

    questions = [("What is twelve plus seven?", "What is 12 + 7?", "en-us+f3", 175, 50),
                 ("A lesson runs from seven oh five to eight twenty five. How many minutes does it last?",
                  "A lesson runs from 7:05 to 8:25. How many minutes does it last?", "en-gb-x-rp+f4", 166, 53)]
    with open(tmp_path / "manifest.jsonl", "w") as manifest:
        for i, (said, written, voice, speed, pitch) in enumerate(questions):
            samples, rate = espeak.render(said, voice=voice, speed_wpm=speed, pitch=pitch)
            audio.save(tmp_path / f"{i}.wav", torch.from_numpy(samples.copy())[None], rate)
            manifest.write(json.dumps({"question_audio": f"{i}.wav", "question_written": written}) + "\n")
    benchmark = load_benchmark("hearing")
    rows = benchmark.main(["--manifest", str(tmp_path / "manifest.jsonl"), "--weights", "1,0.5", "1,0.001"])
    heard = rows[0]["heard"]
    assert rows[0]["n"] == 2 and set(heard) == {"whisper-tiny.en", "CTC ear", "in turn", "cross-check", "either",
                                                "w=1,0.5", "w=1,0.001"}
    assert heard["either"] == 2 and heard["cross-check"] == 2 and heard["in turn"] == 1
    # The model's own weights, chosen again from the same hearings, hear what it heard; Whisper's word all but
    # alone drops the held-out voice's first sentence again.
    assert heard["w=1,0.5"] == heard["cross-check"] and heard["w=1,0.001"] == heard["whisper-tiny.en"] == 1
    assert all(ms > 0 for ms in rows[0]["ms"].values())
    assert any(line.startswith(tmp_path.name) for line in capsys.readouterr().out.splitlines())


def test_hearing_benchmark_records_silence_around_questions_beside_the_whole_recording(tmp_path):
    """Two seconds of silence before and after a question: the ears given all of the recording (whole, the
    baseline) lose its numbers, the speech the VAD found keeps them."""
    import json

    import pytest

    from s2s import audio
    from s2s.data import espeak

    samples, rate = espeak.render("A film ends at eight forty five and lasted eighty minutes. When did it start?",
                                  voice="en-gb-scotland+f2")
    audio.save(tmp_path / "0.wav", torch.from_numpy(samples.copy())[None], rate)
    written = "A film ends at 8:45 and lasted 80 minutes. When did it start?"
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"question_audio": "0.wav", "question_written": written}))
    benchmark = load_benchmark("hearing")
    heard = benchmark.main(["--manifest", str(tmp_path / "manifest.jsonl"), "--silence", "2"])[0]["heard"]
    assert heard["cross-check"] == 1 and heard["whole"] == 0
    assert "whole" not in benchmark.main(["--manifest", str(tmp_path / "manifest.jsonl")])[0]["heard"]
    with pytest.raises(SystemExit, match="--silence takes 0 to 20 seconds"):
        benchmark.main(["--manifest", str(tmp_path / "manifest.jsonl"), "--silence", "-1"])
