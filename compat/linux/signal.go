package linux

// Layout of the x86-64 signal frame (arch/x86/include/asm/sigframe.h,
// uapi/asm/sigcontext.h, uapi/asm-generic/ucontext.h, siginfo.h):
//
//	rt_sigframe { pretcode u64; ucontext uc; siginfo info }
//	ucontext    { uc_flags u64; uc_link u64; stack_t uc_stack (24 bytes);
//	              sigcontext uc_mcontext (256 bytes); sigset uc_sigmask (8) }
//	sigcontext  { r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip,
//	              eflags, cs|gs|fs|ss, err, trapno, oldmask, cr2,
//	              fpstate pointer, reserved[8] }
const (
	ucOff       = 8
	ucStackOff  = ucOff + 16
	mcontextOff = ucOff + 40
	sigmaskOff  = mcontextOff + 256
	siginfoOff  = sigmaskOff + 8
	frameSize   = siginfoOff + 128
	redZone     = 128
)

// sigcontext slot indices.
const (
	scR8 = iota
	scR9
	scR10
	scR11
	scR12
	scR13
	scR14
	scR15
	scRDI
	scRSI
	scRBP
	scRBX
	scRDX
	scRAX
	scRCX
	scRSP
	scRIP
	scEFL
	scCSGSFS
	scERR
	scTRAPNO
	scOLDMASK
	scCR2
	scFPSTATE
)

func sigBit(sig int) uint64 { return 1 << (sig - 1) }

const unblockable = 1<<(SIGKILL-1) | 1<<(SIGSTOP-1)

// defaultIgnored reports whether sig's default action is to ignore it.
func defaultIgnored(sig int) bool {
	return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH
}

// Fault raises a synchronous signal (from a CPU exception) in the running
// thread: its handler runs next. A fault the program does not handle, or
// has blocked, ends the process as Linux would (status 128+sig).
func (p *Process) Fault(m Machine, sig, code int, addr uint64) {
	t := p.Sched.Current()
	if t < 0 {
		return
	}
	th := &p.Threads[t]
	act := &p.sigact[sig]
	if act.handler == SIG_DFL || act.handler == SIG_IGN || th.sigMask&sigBit(sig) != 0 {
		p.fatal(m, t, "unhandled fault", sig, addr)
		return
	}
	p.deliver(m, t, sig, code, addr)
}

// fatal ends the process because of signal sig in thread t, printing
// the registers, the faulting address and the frame-pointer chain of
// return addresses (anyk run symbolizes them).
func (p *Process) fatal(m Machine, t int, why string, sig int, addr uint64) {
	r := &p.Threads[t].Regs
	l := p.line()
	l.S("anyk: ").S(why).S(": signal ").D(int64(sig)).S(" tid ").D(int64(p.Threads[t].Tid)).S(" addr ").X(addr).S(" vector ").D(int64(r.Vector)).S(" error ").X(r.ErrCode).S("\n")
	m.Console(l.Bytes())
	l = p.line()
	l.S("anyk: rip ").X(r.RIP).S(" rsp ").X(r.RSP).S(" rbp ").X(r.RBP).S(" rax ").X(r.RAX).S(" rbx ").X(r.RBX).S("\n")
	m.Console(l.Bytes())
	l = p.line()
	l.S("anyk: rcx ").X(r.RCX).S(" rdx ").X(r.RDX).S(" rsi ").X(r.RSI).S(" rdi ").X(r.RDI).S(" r14 ").X(r.R14).S("\n")
	m.Console(l.Bytes())
	bp := r.RBP
	for i := 0; i < 32 && bp&7 == 0 && p.MM.Access(bp, 16, false); i++ {
		b, err := p.user(m, bp, 16, false)
		if err != 0 {
			break
		}
		l = p.line()
		l.S("anyk:   pc ").X(get64(b[8:])).S("\n")
		m.Console(l.Bytes())
		next := get64(b)
		if next <= bp {
			break
		}
		bp = next
	}
	p.exit(m, 128+sig)
}

// signal marks sig pending for thread t (tgkill); Resume delivers it.
func (p *Process) signal(t, sig int) {
	p.Threads[t].sigPending |= sigBit(sig)
}

// Resume prepares thread t to run: it delivers the lowest pending
// unblocked signal, if any. The platform calls it before switching to t.
func (p *Process) Resume(m Machine, t int) {
	th := &p.Threads[t]
	ready := th.sigPending &^ th.sigMask
	if ready == 0 {
		return
	}
	sig := 1
	for ready&1 == 0 {
		ready >>= 1
		sig++
	}
	th.sigPending &^= sigBit(sig)
	act := &p.sigact[sig]
	switch {
	case act.handler == SIG_IGN:
		return
	case act.handler == SIG_DFL:
		if !defaultIgnored(sig) {
			p.fatal(m, t, "killed", sig, 0)
		}
		return
	}
	p.deliver(m, t, sig, SI_TKILL, 1)
}

// deliver builds an rt_sigframe for sig on thread t's stack (its alternate
// stack if the handler asks for one) and points the thread at the handler.
func (p *Process) deliver(m Machine, t, sig, code int, addr uint64) {
	th := &p.Threads[t]
	r := &th.Regs
	act := &p.sigact[sig]
	onAlt := th.altSize != 0 && r.RSP > th.altSP && r.RSP <= th.altSP+th.altSize
	sp := r.RSP - redZone
	if act.flags&SA_ONSTACK != 0 && th.altSize != 0 && !onAlt {
		sp = th.altSP + th.altSize
	}
	fpstate := (sp - FXSize) &^ 63
	frame := ((fpstate - frameSize) &^ 15) - 8
	b, err := p.user(m, frame, sp-frame, true)
	if err != 0 {
		p.fatal(m, t, "cannot write signal frame", SIGSEGV, sp)
		return
	}
	clear(b)
	put64(b, act.restorer)
	put64(b[ucStackOff:], th.altSP)
	flags := uint32(0)
	if th.altSize == 0 {
		flags = SS_DISABLE
	} else if onAlt {
		flags = SS_ONSTACK
	}
	put32(b[ucStackOff+8:], flags)
	put64(b[ucStackOff+16:], th.altSize)
	mc := b[mcontextOff:]
	sc := func(i int, v uint64) { put64(mc[8*i:], v) }
	sc(scR8, r.R8)
	sc(scR9, r.R9)
	sc(scR10, r.R10)
	sc(scR11, r.R11)
	sc(scR12, r.R12)
	sc(scR13, r.R13)
	sc(scR14, r.R14)
	sc(scR15, r.R15)
	sc(scRDI, r.RDI)
	sc(scRSI, r.RSI)
	sc(scRBP, r.RBP)
	sc(scRBX, r.RBX)
	sc(scRDX, r.RDX)
	sc(scRAX, r.RAX)
	sc(scRCX, r.RCX)
	sc(scRSP, r.RSP)
	sc(scRIP, r.RIP)
	sc(scEFL, r.RFLAGS)
	sc(scCSGSFS, r.CS&0xffff)
	sc(scERR, r.ErrCode)
	sc(scTRAPNO, r.Vector)
	sc(scOLDMASK, th.sigMask)
	sc(scCR2, addr)
	sc(scFPSTATE, fpstate)
	put64(b[sigmaskOff:], th.sigMask)
	si := b[siginfoOff:]
	put32(si, uint32(sig))
	put32(si[8:], uint32(int32(code)))
	put64(si[16:], addr)
	copy(b[fpstate-frame:], th.FXState())

	if act.flags&SA_NODEFER == 0 {
		th.sigMask |= sigBit(sig)
	}
	th.sigMask |= act.mask &^ unblockable
	r.RSP = frame
	r.RIP = act.handler
	r.RDI = uint64(sig)
	r.RSI = frame + siginfoOff
	r.RDX = frame + ucOff
	r.RAX = 0
	r.RFLAGS &^= FlagDF | FlagTF
	p.Stats.Signals++
}

// sigreturn restores the context saved by deliver; the thread's stack
// pointer is just past the frame's return address.
func (p *Process) sigreturn(m Machine, t int) {
	th := &p.Threads[t]
	r := &th.Regs
	frame := r.RSP - 8
	b, err := p.user(m, frame, frameSize, false)
	if err != 0 {
		p.fatal(m, t, "bad signal frame", SIGSEGV, frame)
		return
	}
	mc := b[mcontextOff:]
	sc := func(i int) uint64 { return get64(mc[8*i:]) }
	r.R8, r.R9, r.R10, r.R11 = sc(scR8), sc(scR9), sc(scR10), sc(scR11)
	r.R12, r.R13, r.R14, r.R15 = sc(scR12), sc(scR13), sc(scR14), sc(scR15)
	r.RDI, r.RSI, r.RBP, r.RBX = sc(scRDI), sc(scRSI), sc(scRBP), sc(scRBX)
	r.RDX, r.RAX, r.RCX, r.RSP = sc(scRDX), sc(scRAX), sc(scRCX), sc(scRSP)
	r.RIP = sc(scRIP)
	const userFlags = 0xcd5 | FlagDF | FlagTF | FlagAC // CF PF AF ZF SF OF, DF, TF, AC
	r.RFLAGS = r.RFLAGS&^userFlags | sc(scEFL)&userFlags | FlagIF
	th.sigMask = get64(b[sigmaskOff:]) &^ unblockable
	if fp := sc(scFPSTATE); fp != 0 {
		if f, err := p.user(m, fp, FXSize, false); err == 0 {
			copy(th.FXState(), f)
		}
	}
}
