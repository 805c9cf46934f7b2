// The image-reference grammar for the program: it lives with the evidence engine (the lower layer,
// which imports nothing from components/) and is used from here by config, image, promotion and
// credentials, so there is one answer to "where is the grammar".
export * from "../evidence/reference";
