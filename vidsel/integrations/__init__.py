"""vidsel inside the stacks users already run.

- :mod:`vidsel.integrations.vllm`: the ``vidsel`` video loader of vLLM
  (``VLLM_VIDEO_LOADER_BACKEND=vidsel``), registered by the ``vllm.general_plugins`` entry point
  when vllm is installed; query-free methods only (the loader never sees the question: select on
  the client with :func:`vidsel.selection.to_vllm` for the others).
- :mod:`vidsel.integrations.lmms_eval`: the lmms-eval model ``vidsel`` (entry point
  ``lmms_eval.models``) wrapping any vidsel answerer, and a video sampler with the shape of
  lmms-eval PR #900.
- :mod:`vidsel.integrations.vlmevalkit`: frame selection inside VLMEvalKit model wrappers.

The qwen-vl-utils drop-in is :mod:`vidsel.qwen`; transformers processors take a selection through
:func:`vidsel.selection.to_transformers`. See docs/integrations.md.

The submodules import their library (vllm, lmms-eval) only when that library loads them.
"""
