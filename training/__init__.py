"""What a team edits to change what is trained: feature preparation and one factory per model type."""
