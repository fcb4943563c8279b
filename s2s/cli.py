"""The one `s2s` command.

    s2s fit --config configs/codec/tiny.yaml      train anything (LightningCLI: plain YAML, checked)
    s2s demo                                      the README's main job: answer the bundled question
    s2s reply QUESTION.wav [--out REPLY.wav]      answer a spoken question: thought, reply text, spoken reply
                  [--voice REF.wav] [--style S]   ... in the voice of REF, slow/fast, low/high (the voice converter)
    s2s convert SRC.wav --voice REF.wav           the words of SRC in the voice of REF (voice conversion)
    s2s style eval --manifest M                   voice / rate / pitch accuracy of styled replies, conversion WER
    s2s evaluate --manifest M [--ckpt DIR]        accuracy per family and voice (audio, text, spoken), latency,
                                                  reply WER (--judge), shortcut test, report with plots (--report)
    s2s judge --manifest M [--sphinx]             a judge's own WER/CER on clean TTS: how far to trust it
    s2s codec roundtrip IN.wav --out OUT.wav      encode and decode one file, print quality figures
    s2s codec eval SOURCE                         quality figures over a folder or manifest
    s2s codec export CKPT OUT_DIR                 Lightning checkpoint -> codec folder
    s2s export CKPT OUT_DIR                       Lightning checkpoint -> LM, recogniser, speaker or converter folder
    s2s asr lm DIR --manifest M --field F         count a character LM of a corpus into recogniser DIR (beam search)
    s2s data synth --out DIR --n N                render a spoken reasoning corpus with espeak-ng
    s2s data replies --out DIR --problems N       a reply bank: each distinct reply spoken once (word decoder data)
    s2s data tokenize --manifest M --codec NAME   encode a manifest's audio once into a token cache
    s2s data speech --out DIR --n N               render spoken sentences with espeak-ng (--read-aloud: ear data)
    s2s data rethink MANIFEST --seed S --out NEW  the same corpus with today's thoughts
    s2s data validate MANIFEST                    list every problem in a manifest (exit 1 if any)
    s2s data import --format F SRC --out M.jsonl  manifest for a wav+txt folder or LibriSpeech

User errors end in one line on stderr and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings

LIGHTNING_SUBCOMMANDS = ("fit", "validate", "test", "predict")
IMPORT_FORMATS = ("wav-txt", "librispeech")  # the keys of s2s.data.importers.IMPORTERS, known without importing it
HEARING_HELP = ("the model's ear instead of its own: whisper-tiny.en, hearing (its own CTC ear) or a CTC ear "
                "folder; several, comma-separated, are asked in turn, the first sure one believed (default: the "
                "model's)")

USER_ERRORS = (ValueError, FileNotFoundError, FileExistsError, RuntimeError, KeyError)


def run_lightning(args: list[str]) -> None:
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
    from lightning.pytorch.plugins.io import TorchCheckpointIO

    from s2s.training import AtomicCheckpointIO, RandomStateCheckpoint, cpu_precision

    class OneLineConfigErrors(LightningArgumentParser):
        """A bad config or argument is one line (jsonargparse's nested explanation joined up), not usage + tip."""

        def error(self, message: str, ex: Exception | None = None):
            if not self.exit_on_error:  # jsonargparse trying alternatives: it catches this itself
                return super().error(message, ex)
            text = " ".join(line.strip() for line in str(message).splitlines() if line.strip())
            sys.stderr.write(f"s2s {args[0]}: error: {text} (see s2s {args[0]} --help)\n")
            sys.exit(2)

    class CLI(LightningCLI):
        def init_parser(self, **kwargs):
            parser = super().init_parser(**kwargs)  # which also adds --config
            parser.__class__ = OneLineConfigErrors
            return parser

        def instantiate_trainer(self, **kwargs):
            trainer = super().instantiate_trainer(**kwargs)
            trainer.callbacks.append(RandomStateCheckpoint())
            if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:  # not one the config chose
                trainer.strategy.checkpoint_io = AtomicCheckpointIO()
            return trainer

        def before_instantiate_classes(self) -> None:
            config = self.config[self.subcommand]
            if "weights_only" in config and config.weights_only is None:  # fit(ckpt_path, weights_only), Lightning 2.6
                config.weights_only = True  # a checkpoint resumes as tensors, never as pickled code
            trainer = config.trainer
            precision = cpu_precision(trainer.precision, trainer.accelerator)
            if precision != trainer.precision:
                print(f"note: this CPU has no native bfloat16 ({precision} instead of {trainer.precision}, "
                      "which would run many times slower here)")
                trainer.precision = precision

    # `s2s fit ...` hands LightningCLI the arguments it also finds in sys.argv (which DDP's launcher re-runs).
    warnings.filterwarnings("ignore", message="LightningCLI's args parameter is intended")
    # Our samplers shard batches across ranks themselves (s2s/data/resumable.py): Lightning must not wrap them.
    CLI(subclass_mode_model=True, subclass_mode_data=True, args=args,
        trainer_defaults={"use_distributed_sampler": False}, parser_kwargs={"parser_mode": "omegaconf"},
        save_config_kwargs={"overwrite": True})


def cmd_demo(args: argparse.Namespace) -> None:
    from s2s.demo import run_demo

    run_demo(out=args.out, codec_name=args.codec, ckpt=args.ckpt)


def cmd_reply(args: argparse.Namespace) -> None:
    from pathlib import Path

    from s2s.audio import check_question, read_question
    from s2s.pipeline import S2SPipeline

    # Everything the user can get wrong is checked before the model loads.
    check_question(args.audio, args.text)
    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} already exists; choose another --out or pass --overwrite to replace it")
    wav, rate, text = read_question(args.audio, None, args.text, args.max_seconds)
    if args.voice is not None or args.style is not None:
        from s2s.style.prompt import read_voice, style_words

        style_words(args.style)  # an unknown style word or a bad reference fails before the model loads
        if args.voice is not None:
            read_voice(args.voice)
    pipeline = S2SPipeline.from_pretrained(args.ckpt, converter=converter_arg(args.converter),
                                           hearing=hearing_arg(args.hearing))
    pipeline.max_question_seconds = args.max_seconds
    reply = pipeline(wav, rate, text, out=args.out, overwrite=args.overwrite, temperature=args.temperature,
                     seed=args.seed, calculator=not args.no_calculator, voice=args.voice, style=args.style,
                     speculate=args.speculate, speech_prior=args.speech_prior,
                     word_decoder=not args.no_word_decoder, soft_speech=not args.chosen_codes)
    if args.json:
        print(json.dumps(reply.to_json()))
        return
    timings = reply.timings
    seconds = reply.waveform.shape[-1] / reply.sample_rate
    if reply.question_heard is not None:
        print(f"heard  : {reply.question_heard}")
    print("thought:")
    for line in reply.thought.splitlines() or [""]:
        print(f"  {line}")
    print(f"reply  : {reply.reply_text}")
    answer = reply.answer if reply.answer is not None else "(none: the thought has no 'So the answer is X.' line)"
    print(f"answer : {f'(none: abstained, {reply.abstain_reason})' if reply.abstained else answer}")
    print(f"audio  : {reply.audio} ({seconds:.2f} s at {reply.sample_rate} Hz)" if reply.audio
          else "audio  : (none: the reply has no speech)")
    ttfa = "-" if timings["ttfa_ms"] is None else f"{timings['ttfa_ms']:.0f} ms"
    rtf = "-" if timings["rtf"] is None else f"{timings['rtf']:.3f}"
    hear = "" if timings.get("hear_ms") is None else f" (hearing {timings['hear_ms']:.0f} ms)"
    print(f"timings: first audio {ttfa}{hear}, total {timings['total_ms']:.0f} ms, RTF {rtf}")


def hearing_arg(value: str | None):
    """--hearing A or A,B: one ear, or ears asked in turn."""
    ears = None if value is None else [ear.strip() for ear in value.split(",") if ear.strip()]
    return ears if ears is None or len(ears) > 1 else ears[0]


def converter_arg(value: str | None):
    """--converter: a folder, "default" (the shipped converter) or "none" (the model's own voice prompt)."""
    return None if value == "none" else value


def cmd_convert(args: argparse.Namespace) -> None:
    from pathlib import Path

    from s2s.audio import read_question
    from s2s.style.convert import MAX_SOURCE_SECONDS, convert
    from s2s.style.converter import load_converter
    from s2s.style.prompt import read_voice, style_choice

    if Path(args.out).exists() and not args.overwrite:
        raise FileExistsError(f"{args.out} already exists; choose another --out or pass --overwrite to replace it")
    style_choice(args.style)
    read_voice(args.voice)
    read_question(args.source, max_seconds=MAX_SOURCE_SECONDS, what="recording to convert")  # before models load
    converted = convert(load_converter(args.converter), args.source, args.voice, style=args.style, out=args.out,
                        overwrite=args.overwrite)
    seconds = converted.waveform.shape[-1] / converted.sample_rate
    if args.json:
        print(json.dumps({"audio": converted.audio, "seconds": round(seconds, 3), "timings": converted.timings}))
        return
    print(f"audio  : {converted.audio} ({seconds:.2f} s at {converted.sample_rate} Hz)")
    print(f"timings: total {converted.timings['total_ms']:.0f} ms")


def cmd_style_eval(args: argparse.Namespace) -> None:
    from s2s.eval.reasoning import load_judge
    from s2s.pipeline import S2SPipeline
    from s2s.style.evaluate import evaluate_style, format_style_figures, load_speaker

    speaker, judge = load_speaker(args.speaker), load_judge(args.judge)
    pipeline = S2SPipeline.from_pretrained(args.ckpt, converter=converter_arg(args.converter))
    figures = evaluate_style(pipeline, speaker, judge, args.manifest, limit=args.limit, progress=not args.json)
    print(json.dumps(figures) if args.json else format_style_figures(figures))


def cmd_judge(args: argparse.Namespace) -> None:
    from s2s.eval.judge import format_figures, judge_figures
    from s2s.eval.reasoning import load_judge, read_rows

    read_rows(args.manifest, args.limit)
    judges = {} if args.no_ctc else {"ctc judge": load_judge(args.judge)}
    if args.sphinx:
        from s2s.eval.sphinx import sphinx_judge

        judges["pocketsphinx"] = sphinx_judge()
    if not judges:
        raise ValueError("nothing to check: drop --no-ctc or add --sphinx")
    results = {}
    for name, judge in judges.items():
        results[name] = judge_figures(judge, args.manifest, args.limit)
        lm = getattr(judge, "text_lm", None)
        if lm is not None:  # what the beam search with the text LM adds over the acoustic model alone
            judge.use_text_lm(None)
            results[f"{name} greedy (no text LM)"] = judge_figures(judge, args.manifest, args.limit)
            judge.use_text_lm(lm)
    print(json.dumps(results, indent=2) if args.json else "\n".join(format_figures(n, f) for n, f in results.items()))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from s2s.eval.reasoning import describe_judge, evaluate, load_judge, read_rows
    from s2s.eval.report import check_report_dir, format_text, read_results, without_examples, write_report
    from s2s.pipeline import S2SPipeline

    # Everything the user can get wrong is checked before the model loads.
    read_rows(args.manifest, args.limit)
    if args.compare and not args.report:
        raise ValueError("--compare draws a plot in the report; pass --report DIR as well")
    if args.report:
        check_report_dir(args.report, args.overwrite)
    compare = read_results(args.compare or [])
    for manifest in args.shifts or []:
        read_rows(manifest, args.limit)
    judge = load_judge(args.judge) if args.judge else None
    listener = None
    if args.listener:
        from s2s.eval.listener import load_listener

        listener = load_listener(args.listener)
    pipeline = S2SPipeline.from_pretrained(args.ckpt, hearing=hearing_arg(args.hearing))
    caps = {name: getattr(args, name) for name in ("max_thought_tokens", "max_reply_tokens", "max_speech_frames")
            if getattr(args, name) is not None}
    if args.shifts is not None:
        _evaluate_shifts(args, pipeline, caps)
        return
    sphinx = None
    if args.sphinx:
        from s2s.eval.sphinx import sphinx_judge

        sphinx = sphinx_judge()
    summary = evaluate(pipeline, args.manifest, args.limit, judge=judge, shortcut=args.shortcut,
                       progress=not args.json, calculator=not args.no_calculator, sphinx=sphinx, listener=listener,
                       speech_prior=args.speech_prior, word_decoder=not args.no_word_decoder,
                       soft_speech=not args.chosen_codes, **caps)
    if args.judge:  # the folder the user named rather than "ctc"
        summary["judge"] = describe_judge(args.judge, judge)
    if args.report:
        write_report(summary, args.report, compare, overwrite=args.overwrite)
    if args.json:
        print(json.dumps(summary if args.examples else without_examples(summary)))
        return
    print(format_text(summary))
    if args.report:
        print(f"report: {args.report}/report.md")


def _noise_db(value: str) -> float | None:
    """--noise-db: a number of dB, or "off"."""
    if value.strip().lower() == "off":
        return None
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of dB or off") from None


def _evaluate_shifts(args: argparse.Namespace, pipeline, caps: dict) -> None:
    """`s2s evaluate --shifts`: the generalization table (and the shortcut test when asked), nothing else."""
    from s2s.eval.generalization import format_generalization, generalization
    from s2s.eval.reasoning import shortcut_test
    from s2s.eval.report import format_shortcut

    options = dict(calculator=not args.no_calculator, speech_prior=args.speech_prior,
                   word_decoder=not args.no_word_decoder, soft_speech=not args.chosen_codes, **caps)
    result = generalization(pipeline, [args.manifest, *args.shifts], noise_db=args.noise_db, limit=args.limit,
                            progress=not args.json, heard_limit=args.heard_limit, **options)
    if args.shortcut:
        result["shortcut"] = shortcut_test(pipeline, args.manifest, args.limit, not args.json, **options)
    if args.json:
        print(json.dumps(result))
        return
    print(format_generalization(result))
    if args.shortcut:
        print(format_shortcut(result["shortcut"]))


def cmd_codec_roundtrip(args: argparse.Namespace) -> None:
    from s2s.eval.codec import roundtrip_file

    figures = roundtrip_file(args.input, args.out, codec_name=args.codec, num_codebooks=args.num_codebooks,
                             overwrite=args.overwrite)
    print(json.dumps(figures, indent=2))


def cmd_codec_eval(args: argparse.Namespace) -> None:
    from s2s.codecs import load_codec
    from s2s.eval.codec import evaluate_codec, format_report

    results = evaluate_codec(load_codec(args.codec), args.source, num_codebooks=args.num_codebooks, limit=args.limit)
    print(json.dumps(results, indent=2) if args.json else format_report(results))


def cmd_codec_export(args: argparse.Namespace) -> None:
    from s2s.codecs.tiny.export import export_checkpoint

    print(export_checkpoint(args.ckpt, args.out_dir, overwrite=args.overwrite))


def cmd_asr_lm(args: argparse.Namespace) -> None:
    from s2s.asr.recognizer import build_for_recognizer

    print(build_for_recognizer(args.folder, args.manifest, args.field, order=args.order, overwrite=args.overwrite,
                               beam=args.beam, alpha=args.alpha, beta=args.beta,
                               digits="0123456789" if args.digit_class else ""))


def cmd_lm_phrases(args: argparse.Namespace) -> None:
    from s2s.lm.speculate import build_for_model

    path = build_for_model(args.folder, args.manifest, order=args.order, min_count=args.min_count,
                           min_share=args.min_share, overwrite=args.overwrite)
    print(path)
    if args.align_with:
        from s2s.lm.reply_speech import build_speech_drafts_for_model

        print(build_speech_drafts_for_model(args.folder, args.manifest, args.align_with, min_count=args.min_count,
                                            overwrite=args.overwrite))


def cmd_export(args: argparse.Namespace) -> None:
    from s2s.export import export_checkpoint

    print(export_checkpoint(args.ckpt, args.out_dir, overwrite=args.overwrite, half=args.half))


def cmd_data_synth(args: argparse.Namespace) -> None:
    from s2s.data.synth import synthesize

    print(synthesize(args.out, args.n, seed=args.seed, split=args.split, families=args.families,
                     question_voices=args.voices, reply_voice=args.reply_voice, overwrite=args.overwrite,
                     reply_styles=args.reply_styles, reply_voices=args.reply_voices, question_engines=args.engines,
                     augment_audio=args.augment))


def cmd_data_replies(args: argparse.Namespace) -> None:
    from s2s.data.synth import synthesize_replies

    print(synthesize_replies(args.out, args.problems, seed=args.seed, exclude=args.exclude or [],
                             families=args.families, reply_voice=args.reply_voice, overwrite=args.overwrite))


def cmd_data_rethink(args: argparse.Namespace) -> None:
    from s2s.data.synth import rethink

    out, changed = rethink(args.manifest, args.out, seed=args.seed, families=args.families, overwrite=args.overwrite)
    print(f"{out}: {changed} thoughts rewritten")


def cmd_data_tokenize(args: argparse.Namespace) -> None:
    from s2s.codecs import load_codec
    from s2s.data.token_cache import tokenize_manifest

    cache = tokenize_manifest(args.manifest, load_codec(args.codec), cache_root=args.cache_root)
    print(f"{len(cache)} files tokenized in {cache.folder}")


def cmd_data_speech(args: argparse.Namespace) -> None:
    from s2s.data.speech import render_speech

    print(render_speech(args.out, args.n, seed=args.seed, split=args.split, engine=args.engine,
                        overwrite=args.overwrite, read_aloud_text=args.read_aloud))


def cmd_data_validate(args: argparse.Namespace) -> None:
    from s2s.data.manifest import read_manifest, validate_manifest

    problems = validate_manifest(args.manifest)
    for problem in problems:
        print(f"{args.manifest}:{problem.line}: {problem.field}: {problem.message}")
    if problems:
        lines = len({problem.line for problem in problems})
        print(f"{len(problems)} problem(s) on {lines} line(s) of {args.manifest}")
        sys.exit(1)
    print(f"ok: {len(read_manifest(args.manifest))} examples")


def cmd_data_import(args: argparse.Namespace) -> None:
    from s2s.data.importers import IMPORTERS

    print(IMPORTERS[args.format](args.src, args.out, overwrite=args.overwrite))


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0, with a one-line error otherwise."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


CONVERTER_HELP = ("the voice converter that says the reply in --voice's voice and --style's rate and pitch: a folder, "
                  "'default' (the shipped s2s-converter-tiny) or 'none' (the model's own voice prompt, for a model "
                  "trained on s2s data synth --reply-styles)")
SPEECH_PRIOR_HELP = ("word-timed models with speech drafts: the weight of how the corpus's voice says each word, "
                     "mixed into each speech code (0: the model alone; default %(default)s)")


NO_WORD_DECODER_HELP = ("word-timed models with a word decoder: let the LM choose every word length and say every "
                        "speech code itself (by default the decoder gives each word the LM writes its length, where "
                        "it predicts lengths, and says its frames at once)")
CHOSEN_CODES_HELP = ("word decoder models: decode the speech codes the word decoder chose (by default the codec says "
                     "each frame from the decoder's probabilities, each codebook's expected entry: clearer speech, the "
                     "same codes)")


def unit_float(text: str) -> float:
    """argparse type: a number in [0, 1], with a one-line error otherwise."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {value}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0 or value == float("inf"):
        raise ValueError(text)
    return value


class OneLineErrors(argparse.ArgumentParser):
    """argparse, but a bad argument is one line (what was wrong, where to look), not the usage block."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _add_answering(sub) -> None:
    """`s2s demo`, `s2s reply` and `s2s convert`: answering a question, re-voicing a recording."""
    demo = sub.add_parser("demo", help="the main job: answer the bundled spoken question with the default model")
    demo.add_argument("--out", default="outputs/demo", help="folder for the written audio")
    demo.add_argument("--ckpt", default=None, help="a SpeechReasoningLM folder (default: the shipped model)")
    demo.add_argument("--codec", default="s2s-tiny", help="the codec of the fallback round trip (no model installed)")
    demo.set_defaults(func=cmd_demo)

    rp = sub.add_parser("reply", help="answer a spoken (or --text) question: thought, reply text, spoken reply")
    rp.add_argument("audio", nargs="?", default=None, help="the spoken question (any rate, up to --max-seconds)")
    rp.add_argument("--text", default=None, help="a written question instead of AUDIO")
    rp.add_argument("--out", default="reply.wav", help="where to write the spoken reply (default: reply.wav)")
    rp.add_argument("--ckpt", default=None, help="a SpeechReasoningLM folder (default: the shipped model)")
    rp.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    rp.add_argument("--hearing", default=None, metavar="EAR[,EAR]", help=HEARING_HELP)
    rp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    rp.add_argument("--temperature", type=float, default=0.0, help="0 is greedy")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--max-seconds", type=positive_float, default=30.0,
                    help="refuse longer questions (default 30; a longer file is refused before it is read)")
    rp.add_argument("--no-calculator", action="store_true",
                    help="let the model do its own arithmetic (by default a calculator writes each result after '=')")
    rp.add_argument("--speculate", type=non_negative_int, default=8, metavar="N",
                    help="draft up to N thought and reply ids a forward (the same reply, sooner; 0: one id a "
                         "forward; default 8)")
    rp.add_argument("--speech-prior", type=unit_float, default=0.0, metavar="W", help=SPEECH_PRIOR_HELP)
    rp.add_argument("--no-word-decoder", action="store_true", help=NO_WORD_DECODER_HELP)
    rp.add_argument("--chosen-codes", action="store_true", help=CHOSEN_CODES_HELP)
    rp.add_argument("--voice", default=None, metavar="REF.wav",
                    help="speak the reply in this voice: a reference recording of at least 1 s")
    rp.add_argument("--style", default=None,
                    help="speaking rate and pitch: slow, fast, low, high, or one of each such as 'fast low'")
    rp.add_argument("--converter", default="default", metavar="DIR", help=CONVERTER_HELP)
    rp.set_defaults(func=cmd_reply)

    cv = sub.add_parser("convert", help="say the words of SRC in the voice of --voice REF (voice conversion)")
    cv.add_argument("source", metavar="SRC", help="the recording whose words to keep (up to 30 s)")
    cv.add_argument("--voice", required=True, metavar="REF.wav", help="a recording of the target voice (>= 1 s)")
    cv.add_argument("--out", default="converted.wav", help="where to write the result (default: converted.wav)")
    cv.add_argument("--style", default=None, help="also change rate or pitch: slow, fast, low, high")
    cv.add_argument("--converter", default="default", metavar="DIR",
                    help="a VoiceConverter folder (default: the shipped s2s-converter-tiny)")
    cv.add_argument("--json", action="store_true", help="print one JSON object: audio, seconds, timings")
    cv.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    cv.set_defaults(func=cmd_convert)


def _add_evaluation(sub) -> None:
    """`s2s style eval`, `s2s evaluate` and `s2s judge`: measuring a model."""
    style = sub.add_parser("style", help="style transfer tools").add_subparsers(dest="style_command", required=True)
    se = style.add_parser("eval", help="voice, rate and pitch accuracy of a style model, and conversion WER")
    se.add_argument("--manifest", required=True, help="a styled manifest (s2s data synth --reply-styles)")
    se.add_argument("--ckpt", default=None, help="a SpeechReasoningLM folder (default: the shipped one)")
    se.add_argument("--converter", default="default", metavar="DIR", help=CONVERTER_HELP)
    se.add_argument("--speaker", default="default", metavar="DIR", help="speaker-ID model (default: s2s-speaker-tiny)")
    se.add_argument("--judge", default="default", metavar="DIR", help="the CTC judge (default: s2s-judge-tiny)")
    se.add_argument("--limit", type=int, default=None, help="only the first N prompted rows")
    se.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    se.set_defaults(func=cmd_style_eval)

    evl = sub.add_parser("evaluate", help="answer every question of a manifest, from audio and from text; score them")
    evl.add_argument("--manifest", required=True, help="a spoken reasoning manifest (s2s data synth)")
    evl.add_argument("--ckpt", default=None, help="a SpeechReasoningLM folder (default: the shipped model)")
    evl.add_argument("--limit", type=int, default=None, help="only the first N questions")
    evl.add_argument("--json", action="store_true", help="print one JSON object and nothing else")
    evl.add_argument("--hearing", default=None, metavar="EAR[,EAR]", help=HEARING_HELP)
    evl.add_argument("--examples", action="store_true", help="with --json: every answer, not only the scores")
    evl.add_argument("--judge", nargs="?", const="default", default=None, metavar="DIR",
                     help="a character CTC recogniser folder (configs/asr/judge.yaml; alone: the shipped "
                          "s2s-judge-tiny): transcribes the reply audio for the spoken answer's accuracy and WER/CER")
    evl.add_argument("--listener", default=None, metavar="whisper",
                     help="an independent listener (pretrained Whisper tiny.en) hears each spoken reply, and the "
                          "same reply said by the reference voice; both rates and their ratio come first")
    evl.add_argument("--sphinx", action="store_true",
                     help="also hear the reply audio with pocketsphinx, a weak but independent second opinion")
    evl.add_argument("--shifts", nargs="*", default=None, metavar="MANIFEST",
                     help="print the generalization table instead: answers right for each engine and voice of "
                          "--manifest and these manifests, --manifest with noise, and typed")
    evl.add_argument("--heard-limit", type=int, default=None, metavar="N",
                     help="with --shifts: hear only the first N questions of each manifest (0: typed rows only), "
                          "for a slow reasoner; --limit still caps the typed rows")
    evl.add_argument("--noise-db", type=_noise_db, default=10.0, metavar="DB",
                     help="with --shifts: the SNR of the noisy row (default 10; off: no noisy row)")
    evl.add_argument("--shortcut", action="store_true",
                     help="also rerun with the question audio replaced by silence, noise and another question")
    evl.add_argument("--report", default=None, metavar="DIR", help="write report.md, summary.json and PNG plots here")
    evl.add_argument("--compare", nargs="+", default=None, metavar="JSON",
                     help="with --report: results of other runs (--json output), plotted as accuracy against TTFA")
    evl.add_argument("--overwrite", action="store_true", help="replace an existing --report folder")
    evl.add_argument("--no-calculator", action="store_true",
                     help="score the model's own arithmetic (by default a calculator writes each result after '=')")
    evl.add_argument("--speech-prior", type=unit_float, default=0.0, metavar="W", help=SPEECH_PRIOR_HELP)
    evl.add_argument("--no-word-decoder", action="store_true", help=NO_WORD_DECODER_HELP)
    evl.add_argument("--chosen-codes", action="store_true", help=CHOSEN_CODES_HELP)
    evl.add_argument("--max-thought-tokens", type=int, default=None, help="generation cap (default: the pipeline's)")
    evl.add_argument("--max-reply-tokens", type=int, default=None, help="generation cap (default: the pipeline's)")
    evl.add_argument("--max-speech-frames", type=int, default=None, help="generation cap (default: the pipeline's)")
    evl.set_defaults(func=cmd_evaluate)

    jd = sub.add_parser("judge", help="a judge's own WER/CER on a manifest's clean recordings: how far to trust it")
    jd.add_argument("--manifest", required=True, help="a spoken reasoning manifest (s2s data synth)")
    jd.add_argument("--judge", default="default", metavar="DIR", help="a CTC judge folder (default: the shipped one)")
    jd.add_argument("--no-ctc", action="store_true", help="skip the CTC judge")
    jd.add_argument("--sphinx", action="store_true", help="also check pocketsphinx")
    jd.add_argument("--limit", type=int, default=None, help="only the first N rows")
    jd.add_argument("--json", action="store_true", help="print one JSON object")
    jd.set_defaults(func=cmd_judge)


def _add_model_tools(sub) -> None:
    """`s2s codec ...`, `s2s asr lm`, `s2s lm phrases` and `s2s export`: the parts' own tools."""
    codec = sub.add_parser("codec", help="codec tools").add_subparsers(dest="codec_command", required=True)
    rt = codec.add_parser("roundtrip", help="encode and decode one audio file")
    rt.add_argument("input")
    rt.add_argument("--out", required=True, help="where to write the reconstruction (.wav)")
    rt.add_argument("--codec", default="s2s-tiny", help="pretrained name or saved codec path")
    rt.add_argument("--num-codebooks", type=int, default=None)
    rt.add_argument("--overwrite", action="store_true")
    rt.set_defaults(func=cmd_codec_roundtrip)
    ev = codec.add_parser("eval", help="STOI, SI-SDR, PESQ and log-mel distance over a folder or manifest")
    ev.add_argument("source", help="folder of audio files or a JSONL manifest")
    ev.add_argument("--codec", default="s2s-tiny")
    ev.add_argument("--num-codebooks", type=int, default=None)
    ev.add_argument("--limit", type=int, default=None)
    ev.add_argument("--json", action="store_true")
    ev.set_defaults(func=cmd_codec_eval)
    ex = codec.add_parser("export", help="turn a Lightning checkpoint of s2s-tiny into a codec folder")
    ex.add_argument("ckpt")
    ex.add_argument("out_dir")
    ex.add_argument("--overwrite", action="store_true")
    ex.set_defaults(func=cmd_codec_export)

    asr = sub.add_parser("asr", help="recogniser tools").add_subparsers(dest="asr_command", required=True)
    lm = asr.add_parser("lm", help="count a character LM of a corpus's texts into a recogniser folder: its transcripts "
                                   "then come from a beam search fused with it")
    lm.add_argument("folder", help="a saved recogniser (s2s export of configs/asr/*.yaml)")
    lm.add_argument("--manifest", required=True, action="append", help="a manifest whose texts to count (repeatable)")
    lm.add_argument("--field", required=True, action="append",
                    help="a text field to count, e.g. --field question --field reply (repeatable)")
    lm.add_argument("--order", type=int, default=10, help="characters of context + 1 (default 10)")
    lm.add_argument("--beam", type=int, default=8, help="beam width (default 8)")
    lm.add_argument("--alpha", type=float, default=0.6, help="LM weight in the beam's score (default 0.6)")
    lm.add_argument("--beta", type=float, default=1.0, help="bonus per character (default 1.0)")
    lm.add_argument("--digit-class", action="store_true",
                    help="count digits as one class: the LM says where a number goes, never which digits")
    lm.add_argument("--overwrite", action="store_true", help="replace the folder's text LM")
    lm.set_defaults(func=cmd_asr_lm)

    lmt = sub.add_parser("lm", help="reasoning LM tools").add_subparsers(dest="lm_command", required=True)
    ph = lmt.add_parser("phrases", help="count the phrase table of a corpus's thoughts and replies into a model "
                                        "folder: drafts for speculative decoding (fewer forwards, the same reply)")
    ph.add_argument("folder", help="a saved SpeechReasoningLM (s2s export of configs/lm/*.yaml)")
    ph.add_argument("--manifest", required=True, action="append",
                    help="a manifest whose thoughts and replies to count (repeatable): the training corpus")
    ph.add_argument("--order", type=int, default=6, help="most ids of context (default 6)")
    ph.add_argument("--min-count", type=int, default=3,
                    help="times a phrase (or a word at one length) must have been seen (default 3)")
    ph.add_argument("--min-share", type=float, default=0.4,
                    help="share of a context's continuations its next id must have (default 0.4)")
    ph.add_argument("--align-with", metavar="JUDGE",
                    help="word_timed models: also count how the replies' audio says each word (speech drafts), "
                         "timing the words with this character CTC judge (e.g. s2s/assets/models/s2s-judge-tiny)")
    ph.add_argument("--overwrite", action="store_true", help="replace the folder's phrase table (and speech drafts)")
    ph.set_defaults(func=cmd_lm_phrases)

    exp = sub.add_parser("export", help="turn a Lightning checkpoint of the LM or the recogniser into a model folder")
    exp.add_argument("ckpt")
    exp.add_argument("out_dir")
    exp.add_argument("--overwrite", action="store_true")
    exp.add_argument("--half", action="store_true", help="store float16 weights (half the bytes)")
    exp.set_defaults(func=cmd_export)


def _add_data(sub) -> None:
    """`s2s data ...`: making, checking and importing corpora."""
    data = sub.add_parser("data", help="data tools").add_subparsers(dest="data_command", required=True)
    sy = data.add_parser("synth", help="render spoken reasoning problems: question, thought, answer, spoken reply")
    sy.add_argument("--out", required=True, help="folder for wavs/ and manifest.jsonl")
    sy.add_argument("--n", type=int, required=True, help="number of examples")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("--split", choices=("train", "test", "phrasing", "stretch"), default="train",
                    help="train: training voices and phrasings; test: held-out voices, training phrasings and "
                         "sizes; phrasing: held-out voices and phrasings; stretch: held-out voices, sizes just "
                         "beyond training (s2s/data/grammar.py)")
    sy.add_argument("--families", nargs="+", default=None,
                    help="problem families (default: the six in scope; out_of_scope on request)")
    sy.add_argument("--voices", nargs="+", default=None,
                    help="question voices from the split: base+variant (espeak), festival:NAME or piper:joe")
    sy.add_argument("--engines", nargs="+", choices=("espeak", "festival", "piper"), default=None,
                    help="engines whose voices of the split speak the questions (default: espeak; the split is "
                         "in s2s/data/engines.py)")
    sy.add_argument("--augment", action="store_true",
                    help="training corpora: noise, room, telephone band, speed and gain on the questions")
    sy.add_argument("--reply-voice", default="en-us+f3", help="the assistant's voice, or 'random'")
    sy.add_argument("--reply-styles", action="store_true",
                    help="style transfer data: replies in several voices, rates and pitches, with voice prompts")
    sy.add_argument("--reply-voices", nargs="+", default=None,
                    help="with --reply-styles: the reply voices (default: s2s.data.synth.STYLE_VOICES)")
    sy.add_argument("--overwrite", action="store_true")
    sy.set_defaults(func=cmd_data_synth)
    rp = data.add_parser("replies", help="a reply bank: the distinct replies of many drawn problems, each spoken "
                         "once in the assistant's voice, no questions (word decoder data)")
    rp.add_argument("--out", required=True, help="folder for wavs/ and manifest.jsonl")
    rp.add_argument("--problems", type=int, required=True, help="number of problems to draw replies from")
    rp.add_argument("--seed", type=int, default=0)
    rp.add_argument("--exclude", nargs="+", default=None,
                    help="manifests whose replies are already spoken: left out of the bank")
    rp.add_argument("--families", nargs="+", default=None, help="problem families (default: all)")
    rp.add_argument("--reply-voice", default="en-us+f3", help="the assistant's voice")
    rp.add_argument("--overwrite", action="store_true")
    rp.set_defaults(func=cmd_data_replies)
    rth = data.add_parser("rethink", help="copy a synthesised manifest with the thoughts today's problem generator "
                         "writes (no audio is rendered)")
    rth.add_argument("manifest", help="a manifest written by `s2s data synth`")
    rth.add_argument("--out", required=True, help="the new manifest, beside the old one (audio paths are relative)")
    rth.add_argument("--seed", type=int, required=True, help="the --seed the corpus was synthesised with")
    rth.add_argument("--families", nargs="+", default=None, help="the --families it was synthesised with")
    rth.add_argument("--overwrite", action="store_true")
    rth.set_defaults(func=cmd_data_rethink)
    tk = data.add_parser("tokenize", help="encode all audio of a manifest once into a sharded token cache")
    tk.add_argument("--manifest", required=True)
    tk.add_argument("--codec", default="s2s-tiny", help="pretrained name or saved codec path")
    tk.add_argument("--cache-root", default=None, help="default: tokens/ beside the manifest")
    tk.set_defaults(func=cmd_data_tokenize)
    sp = data.add_parser("speech", help="render random spoken sentences with espeak-ng (codec training data)")
    sp.add_argument("--out", required=True)
    sp.add_argument("--n", type=int, required=True)
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--split", choices=("train", "test"), default="train",
                    help="train voices, or the held-out test voices (see s2s/data/voices.py)")
    sp.add_argument("--engine", choices=("espeak", "festival"), default="espeak",
                    help="festival: an engine never used for training (test split only)")
    sp.add_argument("--read-aloud", action="store_true",
                    help="words in no order with numbers and times among them, each row also written with digits "
                         "(`written`): training data for an ear, beside the questions")
    sp.add_argument("--overwrite", action="store_true")
    sp.set_defaults(func=cmd_data_speech)
    va = data.add_parser("validate", help="list every problem in a manifest: bad JSON, ids, audio, empty text")
    va.add_argument("manifest", help="a .jsonl manifest")
    va.set_defaults(func=cmd_data_validate)
    im = data.add_parser("import", help="write a manifest for an existing corpus (no audio is copied)")
    im.add_argument("--format", required=True, choices=IMPORT_FORMATS,
                    help="wav-txt: NAME.wav + NAME.txt pairs; librispeech: SPEAKER/CHAPTER/*.flac + *.trans.txt")
    im.add_argument("src", help="the corpus folder")
    im.add_argument("--out", required=True, help="the manifest to write (.jsonl); audio paths are relative to it")
    im.add_argument("--overwrite", action="store_true")
    im.set_defaults(func=cmd_data_import)


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrors(prog="s2s", description="Speech-to-speech reasoning.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in LIGHTNING_SUBCOMMANDS:
        sub.add_parser(name, help=f"LightningCLI {name}: s2s {name} --config CONFIG.yaml", add_help=False)

    _add_answering(sub)
    _add_evaluation(sub)
    _add_model_tools(sub)
    _add_data(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in LIGHTNING_SUBCOMMANDS:
        run_lightning(argv)
        return
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as err:
        print(f"s2s: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
