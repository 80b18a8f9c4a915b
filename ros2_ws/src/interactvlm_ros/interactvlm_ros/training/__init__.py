"""Training: the method's losses, LoRA, the teacher-forced training forward and the trainer (``interactvlm
train``). Import the submodules (``training.trainer``, ``training.forward``); they pull in torch."""
