"""Stage-2 clustering maths: k-means, cluster metrics, normalised cut."""
