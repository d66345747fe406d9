// fast-check for the property tests, imported by its npm specifier here only: the test tools
// stay out of deno.json's import map, so the library and the examples never download them.
export { default } from "npm:fast-check@4.11.0";
export * from "npm:fast-check@4.11.0";
