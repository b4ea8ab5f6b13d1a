import type { Command } from 'commander';
import { KINDS } from '@sluice/api';
import { CliError } from '../errors.js';
import type { Session } from '../session.js';
import { withExamples } from './examples.js';

/** Commands whose first argument is a kind and whose next ones are object names. */
const KIND_COMMANDS = ['get', 'describe', 'delete', 'edit', 'explain'];

function flagsOf(cmd: Command): string[] {
  return cmd.options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
}

/** Flags that take a value, so completion skips their values when looking for the command. */
function valueFlags(program: Command): string[] {
  const all = [program, ...program.commands, ...program.commands.flatMap((c) => c.commands)];
  const out = new Set<string>();
  for (const c of all) {
    for (const o of c.options) {
      if (o.required || o.optional) for (const f of [o.short, o.long]) if (f !== undefined) out.add(f);
    }
  }
  return [...out].sort();
}

/** A bash completion script built from the command tree, so it never drifts from the CLI. */
export function bashCompletion(program: Command): string {
  const commands = program.commands.map((c) => c.name()).filter((n) => n !== 'help');
  const configSubcommands = program.commands.find((c) => c.name() === 'config')?.commands.map((c) => c.name()) ?? [];
  const kinds = KINDS.flatMap((k) => [k.plural, k.singular, ...k.shortNames]);
  const globalFlags = flagsOf(program);
  const perCommand = program.commands
    .filter((c) => c.name() !== 'help')
    .map((c) => `        ${c.name()}) flags="${[...flagsOf(c), ...globalFlags, '--help'].join(' ')}" ;;`)
    .join('\n');
  return `# bash completion for sluicectl
# Load it with:  source <(sluicectl completion bash)

_sluicectl_names() {
    # Object names of a kind, in the namespace given on the command line (if any).
    local kind="$1" ns_args=()
    [[ -n "$2" ]] && ns_args=(--namespace "$2")
    sluicectl get "$kind" -o name "\${ns_args[@]}" --request-timeout 5s 2>/dev/null | cut -d/ -f2
}

_sluicectl() {
    local cur prev
    cur="\${COMP_WORDS[COMP_CWORD]}"
    prev="\${COMP_WORDS[COMP_CWORD-1]}"
    local commands="${commands.join(' ')}"
    local kinds="${kinds.join(' ')}"
    local value_flags=" ${valueFlags(program).join(' ')} "

    case "$prev" in
        -o|--output) COMPREPLY=($(compgen -W "wide yaml json name" -- "$cur")); return ;;
        -f|--filename) COMPREPLY=($(compgen -f -- "$cur")); compopt -o filenames 2>/dev/null; return ;;
        --dry-run) COMPREPLY=($(compgen -W "none server" -- "$cur")); return ;;
    esac
    if [[ "$value_flags" == *" $prev "* ]]; then
        return
    fi

    # Find the command and its positional arguments, skipping flags and their values.
    local cmd="" sub="" ns="" args=() i w skip=0
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="\${COMP_WORDS[i]}"
        if ((skip)); then skip=0; continue; fi
        case "$w" in
            -n|--namespace) ns="\${COMP_WORDS[i+1]}"; skip=1; continue ;;
            --namespace=*) ns="\${w#--namespace=}"; continue ;;
            --*=*) continue ;;
            -*) [[ "$value_flags" == *" $w "* ]] && skip=1; continue ;;
        esac
        if [[ -z "$cmd" ]]; then cmd="$w"
        elif [[ "$cmd" == config && -z "$sub" ]]; then sub="$w"
        else args+=("$w")
        fi
    done

    local flags=""
    case "$cmd" in
${perCommand}
    esac
    if [[ "$cur" == -* ]]; then
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
        return
    fi
    case "$cmd" in
        "") COMPREPLY=($(compgen -W "$commands" -- "$cur")) ;;
        ${KIND_COMMANDS.join('|')})
            if ((\${#args[@]} == 0)); then
                if [[ "$cur" == */* ]]; then
                    local kind="\${cur%%/*}"
                    COMPREPLY=($(compgen -P "$kind/" -W "$(_sluicectl_names "$kind" "$ns")" -- "\${cur#*/}"))
                else
                    COMPREPLY=($(compgen -W "$kinds" -- "$cur"))
                fi
            elif [[ "$cmd" != explain && "\${args[0]}" != */* ]]; then
                COMPREPLY=($(compgen -W "$(_sluicectl_names "\${args[0]}" "$ns")" -- "$cur"))
            fi ;;
        config)
            if [[ -z "$sub" ]]; then
                COMPREPLY=($(compgen -W "${configSubcommands.join(' ')}" -- "$cur"))
            elif [[ "$sub" == use-context || "$sub" == delete-context || "$sub" == set-context || "$sub" == get-contexts ]]; then
                COMPREPLY=($(compgen -W "$(sluicectl config get-contexts -o name 2>/dev/null)" -- "$cur"))
            fi ;;
        completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
    esac
}

complete -o default -F _sluicectl sluicectl
`;
}

/** zsh runs the bash script through bashcompinit, as many CLIs do. */
export function zshCompletion(program: Command): string {
  return `#compdef sluicectl
# zsh completion for sluicectl
# Load it with:  source <(sluicectl completion zsh)

autoload -U +X compinit && compinit
autoload -U +X bashcompinit && bashcompinit

${bashCompletion(program).replace(/^# bash completion for sluicectl\n# Load it with:.*\n/, '')}`;
}

export function registerCompletion(parent: Command, session: Session): void {
  const cmd = parent
    .command('completion')
    .description('Print a shell completion script (bash or zsh)')
    .argument('<shell>', 'bash or zsh')
    .action((shell: string) => {
      switch (shell) {
        case 'bash':
          session.io.out(bashCompletion(parent));
          return;
        case 'zsh':
          session.io.out(zshCompletion(parent));
          return;
        default:
          throw new CliError('usage', `unsupported shell "${shell}": use bash or zsh`);
      }
    });
  withExamples(
    cmd,
    `
# Load completion in the current bash shell
source <(sluicectl completion bash)

# Install it for every zsh session
sluicectl completion zsh > "\${fpath[1]}/_sluicectl"
`,
  );
}
