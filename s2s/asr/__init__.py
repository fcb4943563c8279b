"""Hearing: a small conformer CTC recogniser (log-mels in, labels out), trained on the synthetic corpus.

It serves twice: as the reasoning LM's audio encoder (labels = the LM's own
text tokens, so its compressed states line up with a text question), and as
an ASR judge of reply audio that is not the model under test (labels = characters).
"""
