"""Train the demo model from scratch on CPU: ``python build.py train-demo`` runs this module.

A byte-level BPE (Hugging Face ``tokenizers``) and a GPT-2 (``transformers``'
``GPT2LMHeadModel``: Radford et al., "Language Models are Unsupervised Multitask
Learners", 2019) trained with PyTorch; each step is one loss over three batches:

* natural English text: the Python 3.11 documentation sources (Debian's
  ``python3.11-doc``, PSF licence), about 1 file in 20 held out for validation loss;
* generated IOI sentences (Wang et al. 2022) and fact-table sentences (``data.py``), one
  per row, as prompts are asked;
* random tokens with one span copied after a random gap, the loss on the copy only
  (induction: Olsson et al. 2022). The run starts on these alone with the MLPs switched
  off (``switch_mlps``), on short rows until the loss falls below ``--warmup-target``, then
  on wider rows (``--extend-widths``); mixed with text from the start, or with the MLPs
  on, the model sat on the plateau before in-context copying for thousands of steps. Then
  ``--steps`` steps on all three with the MLPs on, which keep the induction head while the
  rest is learned. ``--resume`` continues a saved run with more mixed steps (the packaged
  model took two runs: demo/model/README.md).

Reproducible from ``--seed``: one ``random.Random`` draws every row in order,
``torch.manual_seed`` the weights, two threads and deterministic kernels. Writes
config.json, model.safetensors (float16), tokenizer.json, the held-out JSON files and
training.json into ``--out``, then measures the saved model with NeuroScope
(``evaluate.py``). This is the only module of the package that imports torch,
tokenizers or transformers.
"""

import argparse
import json
import math
import os
import random
import sys
import time

# Idle OpenMP threads sleep instead of spinning: on two cores shared with other work,
# spinning threads made steps up to 5x slower. Read when torch loads OpenMP.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import GPT2Config, GPT2LMHeadModel  # noqa: E402

from . import MODEL_DIR, data  # noqa: E402

EOT = "<|endoftext|>"
IOI_SHARE = 0.5  # of the generated sentences in a synthetic row; the rest are facts


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m neuroscope.demo.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=MODEL_DIR, help="output folder (default: the packaged demo model)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=1800,
                        help="optimizer steps on the mixed data, after the induction warm-up (default 1800)")
    parser.add_argument("--text-dir", default=data.PYTHON_DOCS, help="natural text: Python docs sources")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--heads", type=int, default=8)
    parser.add_argument("--context", type=int, default=256, help="tokens per row (and n_positions)")
    parser.add_argument("--text-rows", type=int, default=1, help="rows of natural text per step")
    parser.add_argument("--synthetic-rows", type=int, default=32, help="IOI and fact sentences per step")
    parser.add_argument("--induction-tokens", type=int, default=1024,
                        help="tokens of rows with a copied random span per mixed step")
    parser.add_argument("--warmup-width", type=int, default=32, help="row width of the induction warm-up")
    parser.add_argument("--warmup-rows", type=int, default=16, help="rows per warm-up step")
    parser.add_argument("--warmup-max-steps", type=int, default=8000,
                        help="the warm-up gives up after this many steps")
    parser.add_argument("--warmup-target", type=float, default=0.3,
                        help="each warm-up stage ends once its smoothed loss on the copies is below this")
    parser.add_argument("--warmup-lr", type=float, default=1e-3, help="learning rate of the warm-up")
    parser.add_argument("--extend-widths", default="64,128,256",
                        help="row widths the warm-up then extends the head to, in turn, up to --context")
    parser.add_argument("--extend-steps", type=int, default=600, help="at most this many steps per width")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak learning rate of the mixed steps")
    parser.add_argument("--init", type=float, default=0.02, help="initializer_range (std of the weights)")
    parser.add_argument("--embedding-std", type=float, default=1.0,
                        help="std of the token and position embeddings at init")
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--warmup", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=200, help="steps between quick evaluations")
    parser.add_argument("--no-final-eval", action="store_true", help="skip NeuroScope's final evaluation")
    parser.add_argument("--resume", default=None,
                        help="a folder this script wrote: continue from its weights and tokenizer with "
                             "--steps more mixed steps (no warm-up); its training.json is kept as 'previous'")
    return parser.parse_args(argv)


# -- tokenizer -------------------------------------------------------------------
def synthetic_sentences(rng, count):
    return [data.ioi_train_sentence(rng) if rng.random() < IOI_SHARE else data.fact_train_sentence(rng)
            for _ in range(count)]


def train_tokenizer(documents, vocab_size, seed):
    """Byte-level BPE, GPT-2 style, with <|endoftext|> as id 0, trained on text + generated data."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[EOT], min_frequency=2,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    synthetic = synthetic_sentences(random.Random(seed), 60_000)
    corpus = [text for _, text in documents] + [" ".join(synthetic[i:i + 50]) for i in range(0, 60_000, 50)]
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    return tokenizer


def check_single_tokens(tokenizer):
    """Names and answers that are not one token (the evaluation uses their first token)."""
    words = data.NAMES + [answer for _, _, answer in data.fact_list()]
    return sorted({w for w in words if len(tokenizer.encode(" " + w, add_special_tokens=False).ids) != 1})


# -- batches -----------------------------------------------------------------------
class Batches:
    """Each step's three batches, drawn in a fixed order from one seed.

    * text: ``text_rows`` windows of ``context`` tokens of the natural text;
    * synthetic: ``synthetic_rows`` single sentences (IOI or fact), each alone in its row
      as a prompt is at evaluation (``<|endoftext|>`` first), right-padded;
    * induction: ``<|endoftext|>`` + random tokens in which one span is copied after a
      random gap (``data.copy_row``), the loss on the copy: ``induction_tokens`` tokens of
      rows as wide as the context, or ``rows`` rows of ``width`` in the warm-up, where it is
      the only batch.

    Rows are ``(ids, labels)``; labels are -100 where nothing is to be learned (padding,
    the first copy of a random span).
    """

    def __init__(self, tokenizer, stream, args, seed):
        self.tokenizer, self.stream, self.args = tokenizer, stream, args
        self.rng = random.Random(seed)
        self.eot = tokenizer.token_to_id(EOT)
        self.vocab = tokenizer.get_vocab_size()
        self.counts = {"text": 0, "synthetic": 0, "induction": 0}

    def mixed(self):
        return [batch for batch in (self.text(), self.synthetic(), self.induction()) if batch is not None]

    def text(self):
        n, rows = self.args.context - 1, []
        for _ in range(self.args.text_rows):
            start = self.rng.randrange(len(self.stream) - n)
            rows.append([self.eot] + self.stream[start:start + n])
        self.counts["text"] += len(rows)
        return _tensors(rows, [[-100] + row[1:] for row in rows]) if rows else None

    def synthetic(self):
        if not self.args.synthetic_rows:
            return None
        sentences = synthetic_sentences(self.rng, self.args.synthetic_rows)
        encoded = [[self.eot] + e.ids + [self.eot]
                   for e in self.tokenizer.encode_batch(sentences, add_special_tokens=False)]
        width = max(len(row) for row in encoded)
        ids = [row + [self.eot] * (width - len(row)) for row in encoded]
        labels = [[-100] + row[1:] + [-100] * (width - len(row)) for row in encoded]
        self.counts["synthetic"] += len(ids)
        return _tensors(ids, labels)

    def induction(self, width=None, rows=None):
        """Rows of ``width`` (default: the context) tokens with a copied random span."""
        if not self.args.induction_tokens and rows is None:
            return None
        width = width or self.args.context
        ids, labels = [], []
        for _ in range(rows or max(1, self.args.induction_tokens // width)):
            row, mask = data.copy_row(self.rng, self.vocab, width - 1, low=1)
            ids.append([self.eot] + row)
            labels.append([-100] + [token if keep else -100 for token, keep in zip(row, mask)])
        self.counts["induction"] += len(ids)
        return _tensors(ids, labels)


def _tensors(ids, labels):
    return torch.tensor(ids), torch.tensor(labels)


def token_stream(tokenizer, documents):
    eot = tokenizer.token_to_id(EOT)
    stream = []
    for encoding in tokenizer.encode_batch([text for _, text in documents], add_special_tokens=False):
        stream += encoding.ids + [eot]
    return stream


# -- evaluation --------------------------------------------------------------------
@torch.no_grad()
def validation_loss(model, stream, context, eot):
    """Mean next-token loss on consecutive windows of the held-out text."""
    model.eval()
    windows = [[eot] + stream[i:i + context - 1] for i in range(0, len(stream) - context, context - 1)]
    total, count = 0.0, 0
    for i in range(0, len(windows), 16):
        batch = torch.tensor(windows[i:i + 16])
        labels = batch.clone()
        labels[:, 0] = -100
        loss = model(input_ids=batch, labels=labels).loss
        total += loss.item() * batch.numel()
        count += batch.numel()
    model.train()
    return total / count, count


@torch.no_grad()
def quick_eval(model, tokenizer):
    """IOI logit difference and fact accuracy on the held-out prompts, one prompt at a time."""
    model.eval()
    eot = tokenizer.token_to_id(EOT)

    def last_logits(prompt):
        ids = [eot] + tokenizer.encode(prompt, add_special_tokens=False).ids
        return model(input_ids=torch.tensor([ids])).logits[0, -1]

    def first(text):
        return tokenizer.encode(text, add_special_tokens=False).ids[0]

    diffs = []
    for item in data.ioi_heldout(count=60):
        logits = last_logits(item["prompt"])
        diffs.append((logits[first(item["answer"])] - logits[first(item["incorrect"])]).item())
    facts = data.facts_heldout()
    hits = sum(int(last_logits(f["prompt"]).argmax().item() == first(f["answer"])) for f in facts)
    rows = [data.induction_row(random.Random(i), tokenizer.get_vocab_size(), 160, low=1) for i in range(4)]
    labels = torch.tensor([[-100] + [t if m else -100 for t, m in zip(ids, mask)] for ids, mask in rows])
    ids = torch.tensor([[eot] + ids for ids, _ in rows])
    repeat_loss = model(input_ids=ids, labels=labels).loss.item()
    scores = {f"induction_score_{'bos' if bos else 'no_bos'}": induction_score(model, eot if bos else None)
              for bos in (True, False)}
    model.train()
    return {"ioi_logit_diff": sum(diffs) / len(diffs), "fact_accuracy": hits / len(facts),
            "induction_loss": repeat_loss, **scores}


@torch.no_grad()
def induction_score(model, bos, span=40, batch=8, seed=99):
    """The best head's TransformerLens ``detect_head`` induction score ("mul": attention on
    the token after the earlier copy of the query's token, over all attention) on ``batch``
    rows of (``bos`` +) a random span repeated once: at most ``span / (2 span + 1)``."""
    rng = random.Random(seed)
    vocab = model.config.vocab_size
    spans = [[rng.randrange(1, vocab) for _ in range(span)] for _ in range(batch)]
    head = [bos] if bos is not None else []
    ids = torch.tensor([head + s + s for s in spans])
    attentions = model(input_ids=ids, output_attentions=True).attentions
    length, offset = ids.shape[1], len(head)
    query = torch.arange(offset + span, length)
    key = query - span + 1
    return max(a[:, :, query, key].sum(-1).mean(0).max().item() / length for a in attentions)


# -- training ----------------------------------------------------------------------
def make_model(args, tokenizer):
    """GPT-2 with an untied unembedding and token and position embeddings of std 1.

    Both matter for the induction warm-up (demo/model/README.md): with GPT-2's 0.02
    embeddings, or the unembedding tied to them, no induction head formed within
    thousands of steps; with PyTorch's ``nn.Embedding`` scale and an untied unembedding it
    forms in about 3,000. Eager attention, so the quick evaluation can read the patterns.
    """
    eot = tokenizer.token_to_id(EOT)
    config = GPT2Config(vocab_size=tokenizer.get_vocab_size(), n_positions=args.context, n_embd=args.d_model,
                        n_layer=args.layers, n_head=args.heads, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0, bos_token_id=eot, eos_token_id=eot, tie_word_embeddings=False,
                        initializer_range=args.init, attn_implementation="eager")
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        model.transformer.wte.weight.normal_(0.0, args.embedding_std)
        model.transformer.wpe.weight.normal_(0.0, args.embedding_std)
    return model


def switch_mlps(model, on):
    """MLPs off: every ``mlp.c_proj`` weight and bias zeroed and frozen, so the MLPs add
    nothing to the residual stream; on: trainable again (from zero)."""
    for block in model.transformer.h:
        if not on:
            with torch.no_grad():
                block.mlp.c_proj.weight.zero_()
                block.mlp.c_proj.bias.zero_()
        block.mlp.c_proj.requires_grad_(on)


def make_optimizer(model, lr, weight_decay=0.1):
    """AdamW with weight decay on matrices only (not on biases and layer norms); frozen
    parameters are left out."""
    trained = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in trained if p.ndim >= 2]
    no_decay = [p for p in trained if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))


def learning_rate(step, steps, args):
    """Linear warm-up to ``lr``, then a cosine down to a tenth of it at ``steps``."""
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    progress = min(1.0, (step - args.warmup) / max(1, steps - args.warmup))
    return args.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))


class Trainer:
    """The optimizer loop with its log: one loss over each step's supervised tokens."""

    def __init__(self, model, batches, tokenizer, args):
        self.model, self.batches, self.tokenizer, self.args = model, batches, tokenizer, args
        self.optimizer = make_optimizer(model, args.lr, args.weight_decay)
        self.step, self.tokens, self.log, self.stages = 0, 0, [], []
        self.start = time.time()

    def train_step(self, lr, batches):
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        parts = [(self.model(input_ids=ids, labels=labels).loss, int((labels[:, 1:] != -100).sum()))
                 for ids, labels in batches]
        loss = sum(part * count for part, count in parts) / sum(count for _, count in parts)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.tokens += sum(ids.numel() for ids, _ in batches)
        return loss.item()

    def report(self, phase, loss, lr, total=None):
        elapsed = time.time() - self.start
        if self.step % 10 == 0:
            of = f"/{total}" if total else ""
            print(f"{phase} step {self.step}{of}  loss {loss:.3f}  lr {lr:.2e}  "
                  f"{self.tokens / elapsed:.0f} tok/s  elapsed {elapsed / 60:.1f} min", flush=True)
        if self.step % self.args.eval_every == 0:
            self.evaluate(phase, loss)

    def evaluate(self, phase, loss):
        quick = quick_eval(self.model, self.tokenizer)
        self.log.append({"step": self.step, "phase": phase, "loss": round(loss, 4), **quick})
        print(f"  eval at step {self.step}: IOI logit diff {quick['ioi_logit_diff']:.2f}, fact accuracy "
              f"{quick['fact_accuracy']:.2f}, loss on repeats {quick['induction_loss']:.2f}, induction score "
              f"{quick['induction_score_bos']:.3f} (no BOS {quick['induction_score_no_bos']:.3f})",
              flush=True)

    def induction_warmup(self):
        """Copied random spans alone, with the MLPs off, until an induction head has formed;
        then the same rows ever wider, so the head works at every position of the context.

        The first stage trains on ``--warmup-rows`` rows of ``--warmup-width`` tokens until
        the smoothed loss on the copies is below ``--warmup-target`` (the head forms after a
        plateau whose length varies, so the stage ends on the loss, within
        ``--warmup-max-steps``); each width of ``--extend-widths`` then trains until the
        same target or ``--extend-steps``. Returns the steps of each stage.
        """
        args = self.args
        switch_mlps(self.model, on=False)
        self.optimizer = make_optimizer(self.model, args.warmup_lr, args.weight_decay)
        widths = [args.warmup_width] + [int(w) for w in args.extend_widths.split(",") if w]
        tokens = args.warmup_rows * args.warmup_width
        for index, width in enumerate(w for w in widths if w <= args.context):
            first, smoothed = self.step, None
            limit = args.warmup_max_steps if index == 0 else args.extend_steps
            rows = max(1, tokens // width)
            while self.step < first + limit:
                lr = args.warmup_lr * min(1.0, (self.step + 1) / args.warmup)
                loss = self.train_step(lr, [self.batches.induction(width, rows)])
                smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
                self.report(f"induction warm-up ({width} wide)", smoothed, lr)
                if smoothed < args.warmup_target:
                    break
            self.stages.append({"width": width, "rows": rows, "steps": self.step - first,
                                "smoothed_loss": round(smoothed, 4)})
            print(f"warm-up stage {width} wide: {self.step - first} steps, loss {smoothed:.3f}", flush=True)
        self.evaluate("warm-up end", smoothed)
        switch_mlps(self.model, on=True)
        self.optimizer = make_optimizer(self.model, args.lr, args.weight_decay)
        return self.step

    def mixed(self, steps):
        """``steps`` steps over text, IOI/fact sentences and repeated spans together."""
        smoothed, first = None, self.step
        while self.step < first + steps:
            lr = learning_rate(self.step - first + self.args.warmup, steps + self.args.warmup, self.args)
            loss = self.train_step(lr, self.batches.mixed())
            smoothed = loss if smoothed is None else 0.95 * smoothed + 0.05 * loss
            self.report("mixed", smoothed, lr, first + steps)
        self.evaluate("final", smoothed)
        return self.step - first


def save(model, tokenizer, folder):
    """The Hugging Face layout, weights in float16; drops the generation config we do not use."""
    os.makedirs(folder, exist_ok=True)
    half = GPT2LMHeadModel(model.config)
    half.load_state_dict(model.state_dict())
    half.half().save_pretrained(folder, safe_serialization=True)
    generation = os.path.join(folder, "generation_config.json")
    if os.path.exists(generation):
        os.remove(generation)
    tokenizer.save(os.path.join(folder, "tokenizer.json"))
    return half.float()


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)
    began = time.time()
    train_docs, heldout_docs = data.natural_text_documents(args.text_dir)
    print(f"natural text: {len(train_docs)} training files, {len(heldout_docs)} held out", flush=True)
    previous = None
    if args.resume:
        tokenizer = Tokenizer.from_file(os.path.join(args.resume, "tokenizer.json"))
        try:
            with open(os.path.join(args.resume, "training.json"), encoding="utf-8") as handle:
                previous = json.load(handle)
        except FileNotFoundError:
            previous = {"note": f"{args.resume} had no training.json"}
    else:
        tokenizer = train_tokenizer(train_docs, args.vocab, args.seed)
    print(f"tokenizer: {tokenizer.get_vocab_size()} tokens ({time.time() - began:.0f} s)", flush=True)
    split = check_single_tokens(tokenizer)
    if split:
        print(f"warning: not single tokens (their first token is used): {', '.join(split)}", flush=True)
    stream, heldout_stream = token_stream(tokenizer, train_docs), token_stream(tokenizer, heldout_docs)
    print(f"text tokens: {len(stream)} train, {len(heldout_stream)} held out", flush=True)
    if args.resume:  # the saved float16 weights, in float32 from here on
        model = GPT2LMHeadModel.from_pretrained(args.resume, torch_dtype=torch.float32,
                                                attn_implementation="eager")
    else:
        model = make_model(args, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {args.layers} layers, d_model {args.d_model}, {args.heads} heads, {params / 1e6:.2f}M "
          f"parameters", flush=True)
    batches = Batches(tokenizer, stream, args, args.seed)
    trainer = Trainer(model, batches, tokenizer, args)
    warmup_steps = 0 if args.resume else trainer.induction_warmup()
    print(f"induction warm-up: {warmup_steps} steps {trainer.stages}", flush=True)
    mixed_steps = trainer.mixed(args.steps)
    steps, seconds, tokens, log = trainer.step, time.time() - trainer.start, trainer.tokens, trainer.log
    rounded = save(model, tokenizer, args.out)
    eot = tokenizer.token_to_id(EOT)
    val_loss, val_tokens = validation_loss(rounded, heldout_stream, args.context, eot)
    print(f"validation loss on held-out text (float16 weights): {val_loss:.3f} over {val_tokens} tokens",
          flush=True)
    data.write_heldout(args.out, heldout_docs)
    summary = {
        "seed": args.seed, "steps": steps, "induction_warmup_steps": warmup_steps,
        "induction_warmup_stages": trainer.stages, "mixed_steps": mixed_steps,
        "train_seconds": round(seconds, 1), "train_cpu_seconds": round(time.process_time(), 1),
        "options": {k: v for k, v in vars(args).items() if k not in ("out", "text_dir")},
        "ioi_share_of_synthetic": IOI_SHARE, "rows": batches.counts,
        "tokens_seen": tokens, "parameters": params,
        "text": {"source": "Python 3.11 documentation sources (Debian python3.11-doc), PSF License 2.0",
                 "train_files": len(train_docs), "heldout_files": len(heldout_docs),
                 "train_tokens": len(stream), "heldout_tokens": len(heldout_stream)},
        "validation_loss": round(val_loss, 4), "multi_token_words": split, "eval_log": log,
        "torch": torch.__version__,
    }
    if previous is not None:
        summary["previous"] = {key: value for key, value in previous.items() if key != "neuroscope_eval"}
    if not args.no_final_eval:
        summary["neuroscope_eval"] = final_eval(args.out)
    summary["total_seconds"] = round(time.time() - began, 1)
    with open(os.path.join(args.out, "training.json"), "w", encoding="utf-8") as handle:
        json.dump(summary, handle, indent=1)
        handle.write("\n")
    print(f"wrote {args.out} in {summary['total_seconds'] / 60:.1f} min", flush=True)
    return 0


def final_eval(folder):
    """The saved (float16) model loaded by NeuroScope and measured as tests/test_demo_model.py does."""
    from .. import TransformerModel
    from .evaluate import evaluate
    model = TransformerModel.from_huggingface(folder)
    result = evaluate(model, folder)
    result.pop("ioi_head_recovery")
    patching = result["ioi_head_patching"]
    print(f"NeuroScope: best induction score {result['induction']['best_score']:.3f} "
          f"{result['induction']['top_heads'][:3]}; IOI logit diff {result['ioi_logit_diff']['mean']:.2f}; "
          f"heads needed for 50% of IOI: {patching['heads_needed']} of {patching['n_heads_total']} "
          f"(joint recovery {[round(r, 2) for r in patching['joint_recovery']]}); "
          f"fact recall {result['fact_recall']['accuracy']:.2f}", flush=True)
    return result


if __name__ == "__main__":
    sys.exit(main())
