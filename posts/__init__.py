"""Stories and what becomes of them: the story model, loading, anniversary rules, rendering."""
