"""The pipeline on one machine: the samplesheet, the stage graph and its runner (`deepgami run`)."""
