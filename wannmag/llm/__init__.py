"""wannmag.llm — the optional ML companion: published LLM methods as small, tested PyTorch pieces.

Independent of the physics side: nothing here imports ``wannmag.structures``/``tightbinding``/``magnetism``/
``workflows`` and none of those imports this package.  Needs the ``llm`` extra (``pip install torch==2.13.0``);
importing ``wannmag.llm`` itself does not import torch, the sub-modules do.

Shared pieces (reused by every kernel) live in :mod:`wannmag.llm.common`:

* ``common.model``    – ``TinyTransformer`` (decoder-only; attention-logit bias hooks, attention masks, position ids,
  soft-token ``inputs_embeds``, MLP activation capture / neuron masks / hooks, LoRA-able linear layers)
* ``common.lora``     – ``LoRALinear`` and ``lora_parameters`` / ``merge_lora``; ``common.lora_targets``: ``add_lora``
  (``target_layers``: role names through ``common.adapter``)
* ``common.tasks``    – ``Vocab`` and the synthetic tasks (arithmetic chains with/without chain-of-thought,
  key→value lookup among documents, memorised facts with conflicting context, multi-source nugget QA, random
  Markov language sources with a known optimum)
* ``common.train``    – ``TrainConfig``, ``lm_loss``, ``train`` (AdamW loop over a batch function)
* ``common.generate`` – greedy/sampled generation with log-probs, sequence log-probs
* ``common.rl``       – group-normalised advantages, the clipped (GRPO/PPO) policy losses, GAE, value loss
* ``common.ppo``      – token-level PPO loop: actor-critic value head, rollouts with KL to a reference, GAE,
  ``shaping_fn`` / ``advantage_fn`` plug-ins (part 2)
* ``common.moe``      – top-k MoE MLP with the Switch load-balancing loss (part 2)
* ``common.metrics``  – entropy, pass@k, Spearman, distinct-n, effective rank
* ``common.seed``     – ``seed_everything``, ``make_generator``, ``set_threads``
* ``common.report``   – text tables, Agg plots, the experiment argument parser

Kernels (part 1, issue 10): :mod:`~wannmag.llm.bee_rag`, :mod:`~wannmag.llm.soft_thinking`, :mod:`~wannmag.llm.kape`,
:mod:`~wannmag.llm.swift_study`, :mod:`~wannmag.llm.riorag`; part 2 (issue 11): :mod:`~wannmag.llm.beamlora`,
:mod:`~wannmag.llm.apex`, :mod:`~wannmag.llm.itt`, :mod:`~wannmag.llm.mohd`, :mod:`~wannmag.llm.upit`,
:mod:`~wannmag.llm.cd_rlhf`, :mod:`~wannmag.llm.ma_rlhf`; experiments in :mod:`wannmag.llm.experiments`
(``python -m wannmag.llm.experiments.NAME --out out/llm/NAME.png``).
"""

KERNELS = ("bee_rag", "soft_thinking", "kape", "swift_study", "riorag",
           "beamlora", "apex", "itt", "mohd", "upit", "cd_rlhf", "ma_rlhf")

__all__ = ["KERNELS"]
