"""One router per thing people do in the UI; `proctor_ui.app.create_app` includes them all."""
