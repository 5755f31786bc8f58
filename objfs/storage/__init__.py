"""Storage backends behind one interface (`base.Storage`), chosen by URL scheme (`registry`)."""
