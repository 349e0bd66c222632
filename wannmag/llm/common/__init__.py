"""Shared pieces of :mod:`wannmag.llm` (need torch): model, LoRA, tasks, training, generation, RL, metrics, seeding."""

from .generate import Generation, generate, sequence_logprobs
from .lora import LoRALinear, lora_parameters, merge_lora
from .lora_targets import add_lora
from .metrics import entropy, pass_at_k, spearman
from .model import ModelOutput, TinyConfig, TinyTransformer
from .rl import clipped_policy_loss, group_advantages
from .seed import make_generator, seed_everything, set_threads
from .tasks import (IGNORE, ArithmeticTask, FactConflictTask, KeyValueDocsTask, NuggetQATask, Vocab,
                    segment_attention_mask)
from .train import TrainConfig, answer_accuracy, batch_loss, forward_batch, lm_loss, train

__all__ = [
    "Generation", "generate", "sequence_logprobs", "LoRALinear", "add_lora", "lora_parameters", "merge_lora",
    "entropy", "pass_at_k", "spearman", "ModelOutput", "TinyConfig", "TinyTransformer", "clipped_policy_loss",
    "group_advantages", "make_generator", "seed_everything", "set_threads", "IGNORE", "ArithmeticTask",
    "FactConflictTask", "KeyValueDocsTask", "NuggetQATask", "Vocab", "segment_attention_mask", "TrainConfig",
    "answer_accuracy", "batch_loss", "forward_batch", "lm_loss", "train",
]
