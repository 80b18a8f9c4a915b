"""``interactvlm demo``: bundled frames published over DDS into the node, outputs received as a robot would,
written to a bag, pictures, meshes and a summary (:func:`~interactvlm_ros.demo.run.run_demo`)."""
