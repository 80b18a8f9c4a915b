"""Serving the contact model from one Triton Inference Server to many nodes (issue 23).

- :mod:`.protocol`: the Triton model's tensors and how a :class:`~interactvlm_ros.pipeline.result.ContactResult`
  travels through them (both sides use it).
- :mod:`.server`: ``interactvlm serve``: pytriton's bundled ``tritonserver`` hosting the project's own
  :class:`~interactvlm_ros.model.ContactPredictor`.
- :mod:`.client`: :class:`TritonContactPredictor`, the predictor the node/infer use when
  ``inference.backend: triton``.
"""
