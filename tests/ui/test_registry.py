"""The widget registry's two sides (validator params in course/, renderers in ui/) name exactly the same widgets."""

from course.widgets import WIDGET_PARAMS
from ui.widgets import RENDERERS


def test_validator_and_renderers_list_the_same_widgets():
    assert set(WIDGET_PARAMS) == set(RENDERERS)
