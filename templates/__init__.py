"""Default Jinja2 templates; each file is one part (subject, text, html) of one mail."""
