# Joins the two 0007 migrations (the arena's source choice; branches, controls, search).

from django.db import migrations
from django.db.migrations.operations.base import Operation


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0007_branches_controls_search"),
        ("chat", "0007_conversation_source_arena"),
    ]

    operations: list[Operation] = []
