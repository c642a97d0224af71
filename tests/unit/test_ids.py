from warriorflow.method import ids


def test_instruction_id_is_content_addressed_on_normalised_text():
    a = ids.instruction_id("Write a  Python\nfunction.")
    assert a == ids.instruction_id("  write a python function. ")
    assert a != ids.instruction_id("Write a Python function!")
    assert len(a) == 32


def test_ids_depend_on_every_part():
    b = ids.battle_id("i", "x", "y")
    assert b != ids.battle_id("i", "y", "x")  # attacker and defender are not interchangeable
    assert ids.vote_id(b, "j", "attacker_first") != ids.vote_id(b, "j", "defender_first")
    s = {"temperature": 0.7, "top_p": 1.0}
    assert ids.response_id("i", "x", s, 1) == ids.response_id("i", "x", dict(reversed(s.items())), 1)
    assert ids.response_id("i", "x", s, 1) != ids.response_id("i", "x", s, 2)
