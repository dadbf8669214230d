--- :checkhealth slm_lsp
local M = {}

local health = vim.health

--- Run `cmd`; returns ok, stdout, stderr (trimmed).
local function run(cmd, timeout_ms)
  local ok, proc = pcall(vim.system, cmd, { text = true })
  if not ok then
    return false, '', tostring(proc)
  end
  local result = proc:wait(timeout_ms)
  local stderr = vim.trim(result.stderr or '')
  if result.code ~= 0 and result.signal ~= 0 then
    stderr = ('timed out or killed (signal %d)\n%s'):format(result.signal, stderr)
  end
  return result.code == 0, vim.trim(result.stdout or ''), stderr
end

--- The last `n` lines of `text`.
local function tail(text, n)
  local lines = vim.split(text, '\n', { trimempty = true })
  return vim.list_slice(lines, math.max(1, #lines - n + 1))
end

local function report_lines(fn, text)
  for line in vim.gsplit(text, '\n', { plain = true, trimempty = true }) do
    fn(line)
  end
end

local function check_neovim()
  local v = vim.version()
  local version = ('%d.%d.%d%s'):format(v.major, v.minor, v.patch, v.prerelease and ('-' .. tostring(v.prerelease)) or '')
  if vim.fn.has('nvim-0.11') == 1 then
    health.ok('Neovim ' .. version)
  else
    health.error('Neovim ' .. version .. ': slm_lsp needs 0.11 or newer (vim.lsp.config, vim.lsp.enable)')
  end
  local mode = require('slm_lsp').inline_mode()
  if vim.lsp.inline_completion and vim.lsp.inline_completion.enable then
    health.ok(('vim.lsp.inline_completion is present; ghost text: %s'):format(mode))
  else
    health.info(('vim.lsp.inline_completion is missing (Neovim < 0.12); ghost text: %s'):format(mode))
  end
end

local function check_server()
  local cfg = vim.lsp.config and vim.lsp.config['slm_lsp']
  local cmd = cfg and cfg.cmd or require('slm_lsp.config').options.cmd
  if type(cmd) ~= 'table' then
    health.info('cmd is a function (custom transport); not checking the executable')
    return
  end
  local exe = vim.fn.exepath(cmd[1])
  if exe == '' then
    health.error(('`%s` not found'):format(cmd[1]), {
      'Install the server: `pip install slm-lsp` (or into a venv) and put it on $PATH,',
      "or give its path: require('slm_lsp').setup({ cmd = { '/path/to/.venv/bin/slm-lsp' } })",
    })
    return
  end
  health.ok(('%s found: %s'):format(vim.fn.fnamemodify(cmd[1], ':t'), exe))

  local ok, out, err = run({ exe, '--version' }, 15000)
  if ok then
    health.ok('version: ' .. out)
  else
    health.error('`slm-lsp --version` failed', tail(out .. '\n' .. err, 20))
  end

  -- doctor may assemble the bundled model on first use: give it time.
  local root = (vim.lsp.get_clients({ name = 'slm_lsp' })[1] or {}).root_dir or vim.fn.getcwd()
  ok, out, err = run({ exe, 'doctor', '--workspace', root }, 300000)
  for line in vim.gsplit(out, '\n', { plain = true, trimempty = true }) do
    local verdict, rest = line:match('^%s*(%a+)%s+(.*)$')
    if verdict == 'ok' then
      health.ok(rest)
    elseif verdict == 'FAIL' then
      health.error(rest)
    else
      health.info(vim.trim(line))
    end
  end
  if ok then
    health.ok('`slm-lsp doctor` passed')
  else
    health.error('`slm-lsp doctor` reported a problem', tail(err, 20))
  end
end

local function check_clients()
  local slm = require('slm_lsp')
  local clients = vim.lsp.get_clients({ name = slm.name })
  if #clients == 0 then
    health.info('no slm_lsp client is running (open a file of a configured filetype)')
    return
  end
  for _, client in ipairs(clients) do
    local buffers = vim.tbl_keys(client.attached_buffers)
    table.sort(buffers)
    health.ok(('client %d attached to buffer(s) %s, root %s'):format(
      client.id,
      table.concat(buffers, ', '),
      client.root_dir or '(none)'
    ))
    if not (client.server_capabilities or {}).inlineCompletionProvider then
      health.warn('the server does not announce inlineCompletionProvider')
    end
  end
  local status = slm.status()
  if status then
    report_lines(health.info, 'last slm/status:\n' .. slm.format_status(status))
  end
end

function M.check()
  health.start('slm_lsp: Neovim')
  check_neovim()
  health.start('slm_lsp: server')
  check_server()
  health.start('slm_lsp: clients')
  check_clients()
end

return M
