"""The widget registry's two sides (validator params in course/, renderers in ui/) name exactly the same widgets."""

from course.widgets import WIDGET_PARAMS
from ui.widgets import RENDERERS


def test_validator_and_renderers_list_the_same_widgets():
    assert set(WIDGET_PARAMS) == set(RENDERERS)


def test_every_widget_shows_engine_code_read_from_the_source():
    """Issue 14: every live demo can show the engine code behind it, read from engine/ at run time."""
    from ui.code_view import ENGINE_CODE, REPO, resolve

    assert set(ENGINE_CODE) == set(RENDERERS)
    for widget, targets in ENGINE_CODE.items():
        assert targets, widget
        for target in targets:
            snippet = resolve(target)
            assert snippet.path.startswith("engine/"), (widget, target)
            on_disk = (REPO / snippet.path).read_text(encoding="utf-8").splitlines()
            first = on_disk[snippet.line - 1].strip()
            assert first.startswith(("def ", "class ", "@")), (widget, target, first)
            assert snippet.name.split(".")[-1] in "".join(on_disk[snippet.line - 1:snippet.line + 3])
    assert resolve("engine.transform.model:GPT.forward").source.startswith("def forward(")
