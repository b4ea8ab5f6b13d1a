import { formatFieldError, parseYamlDocuments, validateResource, type Resource } from '@sluice/api';

/** Parses and validates (defaults applied) a multi-document file, as the controller does before storing. */
export function loadResources(text: string, file = 'input.yaml'): Resource[] {
  const parsed = parseYamlDocuments(text, file);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.docs.map((d) => {
    const r = validateResource(d.object);
    if (!r.ok) throw new Error(`${file} (line ${d.line}): ${r.errors.map(formatFieldError).join('; ')}`);
    return r.value;
  });
}
