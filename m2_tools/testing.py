"""Test helpers shipped with the library: the scripted engine (the one allowed fake).

Example::

    from m2_tools import M2Reasoner, Settings
    from m2_tools.testing import ScriptedEngine

    engine = ScriptedEngine(replies=["<think>2+2</think><answer>\\boxed{4}</answer>"])
    reasoner = M2Reasoner(Settings(), engine=engine)
    assert reasoner.visual_math_reason(question="What is 2+2?").value == 4
"""

from m2_tools.engines.scripted import ScriptedEngine, ScriptedReply

__all__ = ["ScriptedEngine", "ScriptedReply"]
