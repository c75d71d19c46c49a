"""SynthSign: the built-in procedural isolated-sign dataset."""
